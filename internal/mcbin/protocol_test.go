package mcbin

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// frame builds a response with the given fields.
func frame(opcode byte, status Status, opaque uint32, extras, key, value []byte) []byte {
	b := appendHeader(nil, opcode, len(key), len(extras), len(extras)+len(key)+len(value), opaque, 7)
	b[0] = magicResponse
	b[6], b[7] = byte(status>>8), byte(status)
	b = append(b, extras...)
	b = append(b, key...)
	return append(b, value...)
}

func parse(data []byte, maxBody int) (response, error) {
	var hdr [headerLen]byte
	return readResponse(bufio.NewReader(bytes.NewReader(data)), &hdr, maxBody)
}

func TestReadResponse(t *testing.T) {
	flags := []byte{0, 0, 0, 42}
	hit := frame(opGet, StatusOK, 2, flags, nil, []byte("value"))
	tests := []struct {
		name    string
		data    []byte
		maxBody int
		wantErr error
		check   func(t *testing.T, r response)
	}{
		{"ok, hit", hit, 1024, nil, func(t *testing.T, r response) {
			if string(r.value()) != "value" || !bytes.Equal(r.extras(), flags) || r.cas != 7 || r.opaque != 2 {
				t.Errorf("hit parsed as value %q extras %v cas %d opaque %d", r.value(), r.extras(), r.cas, r.opaque)
			}
		}},
		{"ok, captured miss: its text is not a value", seedGetMiss, 1024, nil, func(t *testing.T, r response) {
			if r.status != StatusKeyNotFound || r.body != nil {
				t.Errorf("miss parsed as status %v body %q", r.status, r.body)
			}
		}},
		{"ok, body exactly MaxBody", hit, len(hit) - headerLen, nil, nil},
		{"nok, body one over MaxBody", hit, len(hit) - headerLen - 1, ErrProtocol, nil},
		{"nok, body of 4 GiB", append(append([]byte{}, hit[:8]...), append([]byte{0xff, 0xff, 0xff, 0xff}, hit[12:]...)...), 1 << 20, ErrProtocol, nil},
		{"nok, request magic", append([]byte{magicRequest}, hit[1:]...), 1024, ErrProtocol, nil},
		{"nok, data type", func() []byte { b := bytes.Clone(hit); b[5] = 1; return b }(), 1024, ErrProtocol, nil},
		{"nok, extras longer than body", func() []byte { b := bytes.Clone(hit); b[4] = 200; return b }(), 1024, ErrProtocol, nil},
		{"nok, key longer than body", func() []byte { b := bytes.Clone(hit); b[2] = 1; return b }(), 1024, ErrProtocol, nil},
		{"nok, nothing", nil, 1024, io.EOF, nil},
		{"nok, half a header", hit[:10], 1024, io.ErrUnexpectedEOF, nil},
		{"nok, half a body", hit[:len(hit)-2], 1024, io.ErrUnexpectedEOF, nil},
		{"nok, half an error text", seedGetMiss[:len(seedGetMiss)-2], 1024, io.ErrUnexpectedEOF, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parse(tt.data, tt.maxBody)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("readResponse error = %v; want %v", err, tt.wantErr)
			}
			if err == nil && tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestMultiReader(t *testing.T) {
	flags := []byte{0, 0, 0, 1}
	keys := []string{"a", "b", "c"}
	hitA := frame(opGetKQ, StatusOK, 100, flags, []byte("a"), []byte("va"))
	hitC := frame(opGetKQ, StatusOK, 102, flags, []byte("c"), []byte("vc"))
	noop := frame(opNoop, StatusOK, 103, nil, nil, nil)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name    string
		data    []byte
		want    []int
		wantErr error
	}{
		{"ok, hits and a miss", cat(hitA, hitC, noop), []int{0, 2}, nil},
		{"ok, all miss", noop, nil, nil},
		{"ok, an error answer for one key", cat(frame(opGetKQ, StatusOutOfMemory, 101, nil, nil, []byte("Out of memory")), noop), []int{1}, nil},
		{"nok, out of order", cat(hitC, hitA, noop), []int{2}, ErrProtocol},
		{"nok, twice the same opaque", cat(hitA, hitA, noop), []int{0}, ErrProtocol},
		{"nok, another key under an opaque", cat(frame(opGetKQ, StatusOK, 100, flags, []byte("b"), []byte("vb")), noop), nil, ErrProtocol},
		{"nok, opaque of an earlier batch", cat(frame(opGetKQ, StatusOK, 99, flags, []byte("a"), nil), noop), nil, ErrProtocol},
		{"nok, no flags", cat(frame(opGetKQ, StatusOK, 100, nil, []byte("a"), []byte("va")), noop), nil, ErrProtocol},
		{"nok, reply to another opcode", cat(frame(opGet, StatusOK, 100, flags, nil, []byte("va")), noop), nil, ErrProtocol},
		{"nok, noop of another batch", cat(hitA, frame(opNoop, StatusOK, 104, nil, nil, nil)), []int{0}, ErrProtocol},
		{"nok, no noop", cat(hitA, hitC), []int{0, 2}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr [headerLen]byte
			m := multiReader{r: bufio.NewReader(bytes.NewReader(tt.data)), hdr: &hdr, maxBody: 1024, op: opGetKQ, base: 100, n: len(keys), keys: keys}
			var got []int
			err := m.read(func(i int, resp response) error {
				got = append(got, i)
				return nil
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("read error = %v; want %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && !equalInts(got, tt.want)) {
				t.Errorf("read reported indexes %v; want %v", got, tt.want)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStatusErrors(t *testing.T) {
	for s, want := range map[Status]error{
		StatusKeyNotFound: ErrNotFound, StatusKeyExists: ErrExists, StatusValueTooLarge: ErrTooLarge,
		StatusInvalidArguments: ErrInvalidArguments, StatusItemNotStored: ErrNotStored, StatusNonNumeric: ErrNonNumeric,
		StatusAuthError: ErrAuth, StatusUnknownCommand: ErrUnknownCommand, StatusOutOfMemory: ErrNoMemory,
	} {
		err := statusErr(s)
		if !errors.Is(err, want) || !IsServerError(err) || IsTransport(err) {
			t.Errorf("statusErr(%#x) = %v; want %v, a server answer", uint16(s), err, want)
		}
		if !errors.Is(&StatusError{Status: s}, want) {
			t.Errorf("a new StatusError{%#x} is not %v", uint16(s), want)
		}
	}
	if err := statusErr(0x99); !IsServerError(err) || err.Error() != "mcbin: status 0x99" {
		t.Errorf("statusErr(0x99) = %v; want a server answer \"mcbin: status 0x99\"", err)
	}
	if statusErr(StatusOK) != nil {
		t.Error("statusErr(StatusOK) is not nil")
	}
	te := &TransportError{Op: "get", Addr: "h:1", Err: io.EOF}
	if !IsTransport(te) || IsServerError(te) || !errors.Is(te, io.EOF) {
		t.Errorf("TransportError{EOF}: transport %v, server %v, Is EOF %v; want true, false, true", IsTransport(te), IsServerError(te), errors.Is(te, io.EOF))
	}
}
