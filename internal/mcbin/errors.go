package mcbin

import (
	"errors"
	"fmt"
)

// Status is the status field of a binary-protocol response (memcached
// protocol_binary.h, protocol_binary_response_status; doc/protocol-binary.xml
// §3.2 "Response Status").
type Status uint16

// Response statuses this package tells apart.
const (
	StatusOK               Status = 0x00
	StatusKeyNotFound      Status = 0x01
	StatusKeyExists        Status = 0x02
	StatusValueTooLarge    Status = 0x03
	StatusInvalidArguments Status = 0x04
	StatusItemNotStored    Status = 0x05
	StatusNonNumeric       Status = 0x06
	StatusAuthError        Status = 0x20
	StatusAuthContinue     Status = 0x21
	StatusUnknownCommand   Status = 0x81
	StatusOutOfMemory      Status = 0x82
)

var statusText = map[Status]string{
	StatusOK:               "no error",
	StatusKeyNotFound:      "key not found",
	StatusKeyExists:        "key exists",
	StatusValueTooLarge:    "value too large",
	StatusInvalidArguments: "invalid arguments",
	StatusItemNotStored:    "item not stored",
	StatusNonNumeric:       "incr/decr on a non-numeric value",
	StatusAuthError:        "authentication failed",
	StatusAuthContinue:     "authentication continues",
	StatusUnknownCommand:   "unknown command",
	StatusOutOfMemory:      "out of memory",
}

// String returns the status's meaning, as memcached's documentation names it.
func (s Status) String() string {
	if t, ok := statusText[s]; ok {
		return t
	}
	return fmt.Sprintf("status 0x%02x", uint16(s))
}

// StatusError is a status answer of the server other than StatusOK: the
// server received the request and refused it. The connection stays usable.
// errors.Is(err, ErrX) compares statuses, so a StatusError with Status 0x01
// is ErrNotFound.
type StatusError struct {
	Status Status
}

// Error returns "mcbin: " and the status's meaning.
func (e *StatusError) Error() string { return "mcbin: " + e.Status.String() }

// Is reports whether target is a *StatusError with the same Status.
func (e *StatusError) Is(target error) bool {
	t, ok := target.(*StatusError)
	return ok && t.Status == e.Status
}

// Status answers of the server, each a *StatusError. Compare with errors.Is.
var (
	// ErrNotFound (0x01): no item under the key; also a CAS given for an
	// absent item, Replace or Touch of an absent key, and Incr/Decr with
	// NoCreate on an absent key.
	ErrNotFound error = &StatusError{StatusKeyNotFound}
	// ErrExists (0x02): Add of a key that holds an item, or a CAS that no
	// longer matches (someone else wrote the item since it was read).
	ErrExists error = &StatusError{StatusKeyExists}
	// ErrTooLarge (0x03): the value is larger than the server's item size
	// (memcached -I, 1 MiB by default, less the item's header and key).
	ErrTooLarge error = &StatusError{StatusValueTooLarge}
	// ErrInvalidArguments (0x04): the server rejected the request's format.
	ErrInvalidArguments error = &StatusError{StatusInvalidArguments}
	// ErrNotStored (0x05): the item was not stored.
	ErrNotStored error = &StatusError{StatusItemNotStored}
	// ErrNonNumeric (0x06): Incr or Decr of an item that is not a decimal
	// number.
	ErrNonNumeric error = &StatusError{StatusNonNumeric}
	// ErrAuth (0x20): authentication failed: the credentials were refused,
	// the server offers no PLAIN mechanism or no SASL at all, or the server
	// requires authentication and none was configured. Its messages name
	// the server and the user, never the password.
	ErrAuth error = &StatusError{StatusAuthError}
	// ErrUnknownCommand (0x81): the server does not know the opcode.
	ErrUnknownCommand error = &StatusError{StatusUnknownCommand}
	// ErrNoMemory (0x82): the server could not allocate room for the item
	// (memcached -M, or a slab class with no free memory). It is an answer,
	// not an outage.
	ErrNoMemory error = &StatusError{StatusOutOfMemory}
)

// Errors made on the client's side, before any I/O.
var (
	// ErrBadKey: the key is empty or longer than 250 bytes (memcached's
	// KEY_MAX_LENGTH).
	ErrBadKey = errors.New("mcbin: key is empty or longer than 250 bytes")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("mcbin: client closed")
)

// ErrProtocol is wrapped by the *TransportError of a reply that breaks the
// binary protocol: bad magic, lengths that do not add up, a body larger than
// Config.MaxBody, or an answer to another request than the one sent.
var ErrProtocol = errors.New("mcbin: malformed reply")

// TransportError reports that a call could not be completed with the
// server: the dial failed, a read or write failed, the deadline passed, or
// the reply was malformed. The connection it used was closed. Unwrap gives
// the cause (io.EOF, syscall.ECONNRESET, os.ErrDeadlineExceeded,
// context.DeadlineExceeded, ErrProtocol …).
type TransportError struct {
	Op   string // the call: "get", "set", "dial", "auth" …
	Addr string // the server's address, as in Config.Addr
	Err  error
}

// Error returns "mcbin: OP ADDR: CAUSE".
func (e *TransportError) Error() string {
	return "mcbin: " + e.Op + " " + e.Addr + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *TransportError) Unwrap() error { return e.Err }

// IsServerError reports whether err is a status answer of the server (it
// wraps a *StatusError): the server is reachable and refused the request.
// A per-server circuit breaker should not count it.
func IsServerError(err error) bool {
	var se *StatusError
	return errors.As(err, &se)
}

// IsTransport reports whether err is a failure to reach the server or talk
// to it (it wraps a *TransportError). It is false for status answers, for
// ErrBadKey and ErrClosed, and for a call cancelled by its context
// (context.Canceled); it is true for a call whose context deadline passed
// during I/O, since that is a server too slow for the caller.
func IsTransport(err error) bool {
	var te *TransportError
	return errors.As(err, &te)
}

// statusErr returns the error of a response status; nil for StatusOK.
func statusErr(s Status) error {
	switch s {
	case StatusOK:
		return nil
	case StatusKeyNotFound:
		return ErrNotFound
	case StatusKeyExists:
		return ErrExists
	case StatusValueTooLarge:
		return ErrTooLarge
	case StatusInvalidArguments:
		return ErrInvalidArguments
	case StatusItemNotStored:
		return ErrNotStored
	case StatusNonNumeric:
		return ErrNonNumeric
	case StatusAuthError:
		return ErrAuth
	case StatusUnknownCommand:
		return ErrUnknownCommand
	case StatusOutOfMemory:
		return ErrNoMemory
	}
	return &StatusError{s}
}
