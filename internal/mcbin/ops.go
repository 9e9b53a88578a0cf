package mcbin

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
)

// Get returns the item under key, with its Flags and CAS. A miss is
// ErrNotFound.
func (c *Client) Get(ctx context.Context, key string) (Item, error) {
	if !validKey(key) {
		return Item{}, ErrBadKey
	}
	req := request{opcode: opGet, key: key}
	resp, err := c.single(ctx, "get", &req, true)
	if err != nil {
		return Item{}, err
	}
	if err := c.status(resp.status); err != nil {
		return Item{}, err
	}
	return Item{Key: key, Value: resp.value(), Flags: binary.BigEndian.Uint32(resp.extras()), CAS: resp.cas}, nil
}

// maxBatchBytes bounds the requests written before their replies are read:
// a pipeline larger than the sockets' buffers could leave the client
// blocked writing while the server is blocked writing replies.
const maxBatchBytes = 64 << 10

// GetMulti reads the items under keys in one round trip (GetKQ for each key
// and a Noop that ends the batch, doc/protocol-binary.xml §4.2; one more
// round trip for every 64 KiB of keys). It calls fn(i, item) for every key
// the server holds, i being the key's index in keys, on the calling
// goroutine before returning; misses are not reported. fn must not block.
// Repeated keys are read repeatedly.
//
// If a key's answer is a status other than a miss, GetMulti returns that
// status's error once all answers are read. On a transport error, the items
// already passed to fn are valid.
func (c *Client) GetMulti(ctx context.Context, keys []string, fn func(i int, it Item)) error {
	for _, k := range keys {
		if !validKey(k) {
			return fmt.Errorf("%w: %q", ErrBadKey, k)
		}
	}
	var firstErr error
	for start := 0; start < len(keys); {
		end, size := start, 0
		for end < len(keys) && (end == start || size+headerLen+len(keys[end]) <= maxBatchBytes) {
			size += headerLen + len(keys[end])
			end++
		}
		batch := keys[start:end]
		err := c.do(ctx, "getmulti", true, func(cn *conn) error {
			cn.begin()
			base := cn.nextOpaque(len(batch) + 1)
			for i, k := range batch {
				cn.appendRequest(opGetKQ, base+uint32(i), 0, nil, k, nil)
			}
			cn.appendRequest(opNoop, base+uint32(len(batch)), 0, nil, "", nil)
			if err := cn.flush(); err != nil {
				return err
			}
			m := multiReader{r: cn.br, hdr: &cn.hdr, maxBody: c.maxBody, op: opGetKQ, base: base, n: len(batch), keys: batch}
			return m.read(func(i int, resp response) error {
				switch resp.status {
				case StatusOK:
					fn(start+i, Item{Key: batch[i], Value: resp.value(), Flags: binary.BigEndian.Uint32(resp.extras()), CAS: resp.cas})
				case StatusKeyNotFound:
				case StatusAuthError:
					return c.status(resp.status) // and the server closes the connection
				default:
					if firstErr == nil {
						firstErr = fmt.Errorf("mcbin: get %q: %w", batch[i], c.status(resp.status))
					}
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		start = end
	}
	return firstErr
}

// Set stores it under it.Key, whatever the key holds, and returns the new
// CAS. With a non-zero it.CAS it is a compare-and-swap: ErrExists if the
// item changed since, ErrNotFound if it is gone. A value larger than the
// server's item size is ErrTooLarge; ErrNoMemory when the server has no room.
func (c *Client) Set(ctx context.Context, it Item) (cas uint64, err error) {
	return c.store(ctx, "set", opSet, it, it.CAS)
}

// Add stores it only if it.Key holds no item, and returns the new CAS. An
// existing item is ErrExists. it.CAS is ignored.
func (c *Client) Add(ctx context.Context, it Item) (cas uint64, err error) {
	return c.store(ctx, "add", opAdd, it, 0)
}

// Replace stores it only if it.Key holds an item, and returns the new CAS.
// An absent item is ErrNotFound. A non-zero it.CAS makes it a
// compare-and-swap, as in Set.
func (c *Client) Replace(ctx context.Context, it Item) (cas uint64, err error) {
	return c.store(ctx, "replace", opReplace, it, it.CAS)
}

func (c *Client) store(ctx context.Context, op string, opcode byte, it Item, cas uint64) (uint64, error) {
	if !validKey(it.Key) {
		return 0, ErrBadKey
	}
	if len(it.Value) > math.MaxUint32-8-maxKeyLen {
		return 0, fmt.Errorf("mcbin: %s: a value of %d bytes does not fit a request", op, len(it.Value))
	}
	req := request{opcode: opcode, cas: cas, extLen: 8, key: it.Key, value: it.Value}
	binary.BigEndian.PutUint32(req.extras[0:4], it.Flags)
	binary.BigEndian.PutUint32(req.extras[4:8], it.Expiration)
	resp, err := c.single(ctx, op, &req, true)
	if err != nil {
		return 0, err
	}
	if err := c.status(resp.status); err != nil {
		return 0, err
	}
	return resp.cas, nil
}

// maxBatchItems bounds the quiet writes sent before their Noop.
const maxBatchItems = 1024

// SetMulti stores items with quiet Sets and a Noop (doc/protocol-binary.xml
// §4.3: a quiet Set answers only failures), in one round trip for up to
// 1024 items. A non-zero CAS makes an item's write a compare-and-swap. It
// returns nil when every item was stored; otherwise the error of the first
// item refused, naming its key (errors.Is gives the status, e.g.
// ErrTooLarge), once all answers are read: the other items may be stored.
func (c *Client) SetMulti(ctx context.Context, items []Item) error {
	for _, it := range items {
		if !validKey(it.Key) {
			return fmt.Errorf("%w: %q", ErrBadKey, it.Key)
		}
		if len(it.Value) > math.MaxUint32-8-maxKeyLen {
			return fmt.Errorf("mcbin: setmulti: a value of %d bytes does not fit a request", len(it.Value))
		}
	}
	var firstErr error
	for start := 0; start < len(items); start += maxBatchItems {
		batch := items[start:min(start+maxBatchItems, len(items))]
		err := c.do(ctx, "setmulti", true, func(cn *conn) error {
			cn.begin()
			base := cn.nextOpaque(len(batch) + 1)
			var extras [8]byte
			for i := range batch {
				it := &batch[i]
				binary.BigEndian.PutUint32(extras[0:4], it.Flags)
				binary.BigEndian.PutUint32(extras[4:8], it.Expiration)
				cn.appendRequest(opSetQ, base+uint32(i), it.CAS, extras[:], it.Key, it.Value)
			}
			cn.appendRequest(opNoop, base+uint32(len(batch)), 0, nil, "", nil)
			if err := cn.flush(); err != nil {
				return err
			}
			m := multiReader{r: cn.br, hdr: &cn.hdr, maxBody: c.maxBody, op: opSetQ, base: base, n: len(batch)}
			return m.read(func(i int, resp response) error {
				if resp.status == StatusAuthError {
					return c.status(resp.status) // and the server closes the connection
				}
				if resp.status != StatusOK && firstErr == nil {
					firstErr = fmt.Errorf("mcbin: set %q: %w", batch[i].Key, c.status(resp.status))
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
	}
	return firstErr
}

// Delete removes the item under key. An absent item is ErrNotFound.
func (c *Client) Delete(ctx context.Context, key string) error {
	if !validKey(key) {
		return ErrBadKey
	}
	req := request{opcode: opDelete, key: key}
	resp, err := c.single(ctx, "delete", &req, true)
	if err != nil {
		return err
	}
	return c.status(resp.status)
}

// DeleteMulti removes the items under keys with quiet Deletes and a Noop
// (doc/protocol-binary.xml §4.4; a quiet Delete answers only failures), in
// one round trip for up to 1024 keys. Absent keys are not an error. It
// returns nil when every key is gone; otherwise the error of the first key
// refused, naming it, once all answers are read.
func (c *Client) DeleteMulti(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if !validKey(k) {
			return fmt.Errorf("%w: %q", ErrBadKey, k)
		}
	}
	var firstErr error
	for start := 0; start < len(keys); start += maxBatchItems {
		batch := keys[start:min(start+maxBatchItems, len(keys))]
		err := c.do(ctx, "deletemulti", true, func(cn *conn) error {
			cn.begin()
			base := cn.nextOpaque(len(batch) + 1)
			for i, k := range batch {
				cn.appendRequest(opDeleteQ, base+uint32(i), 0, nil, k, nil)
			}
			cn.appendRequest(opNoop, base+uint32(len(batch)), 0, nil, "", nil)
			if err := cn.flush(); err != nil {
				return err
			}
			m := multiReader{r: cn.br, hdr: &cn.hdr, maxBody: c.maxBody, op: opDeleteQ, base: base, n: len(batch)}
			return m.read(func(i int, resp response) error {
				switch resp.status {
				case StatusOK, StatusKeyNotFound:
				case StatusAuthError:
					return c.status(resp.status) // and the server closes the connection
				default:
					if firstErr == nil {
						firstErr = fmt.Errorf("mcbin: delete %q: %w", batch[i], c.status(resp.status))
					}
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
	}
	return firstErr
}

// Touch sets the expiration of the item under key (seconds, as
// Item.Expiration). An absent item is ErrNotFound.
func (c *Client) Touch(ctx context.Context, key string, expiration uint32) error {
	if !validKey(key) {
		return ErrBadKey
	}
	req := request{opcode: opTouch, key: key, extLen: 4}
	binary.BigEndian.PutUint32(req.extras[0:4], expiration)
	resp, err := c.single(ctx, "touch", &req, true)
	if err != nil {
		return err
	}
	return c.status(resp.status)
}

// Incr adds delta to the counter under key and returns the new value. An
// absent key is created holding initial (delta is not applied) with the
// given expiration (seconds, as Item.Expiration), unless expiration is
// NoCreate, which makes it ErrNotFound. Counters are unsigned 64-bit and
// wrap around: 2^64-1 + 2 is 1. A value that is not a decimal number is
// ErrNonNumeric. Incr is never retried: a transport error leaves it unknown
// whether it was applied.
func (c *Client) Incr(ctx context.Context, key string, delta, initial uint64, expiration uint32) (uint64, error) {
	return c.counter(ctx, "incr", opIncrement, key, delta, initial, expiration)
}

// Decr subtracts delta from the counter under key and returns the new
// value, as Incr; a counter never goes below 0 (10 - 100 is 0).
func (c *Client) Decr(ctx context.Context, key string, delta, initial uint64, expiration uint32) (uint64, error) {
	return c.counter(ctx, "decr", opDecrement, key, delta, initial, expiration)
}

func (c *Client) counter(ctx context.Context, op string, opcode byte, key string, delta, initial uint64, expiration uint32) (uint64, error) {
	if !validKey(key) {
		return 0, ErrBadKey
	}
	req := request{opcode: opcode, key: key, extLen: 20}
	binary.BigEndian.PutUint64(req.extras[0:8], delta)
	binary.BigEndian.PutUint64(req.extras[8:16], initial)
	binary.BigEndian.PutUint32(req.extras[16:20], expiration)
	resp, err := c.single(ctx, op, &req, false)
	if err != nil {
		return 0, err
	}
	if err := c.status(resp.status); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(resp.value()), nil
}

// Version returns the server's version string. With credentials, the
// connection it uses has authenticated, so it checks the whole path a call
// takes: the store's health probe.
func (c *Client) Version(ctx context.Context) (string, error) {
	req := request{opcode: opVersion}
	resp, err := c.single(ctx, "version", &req, true)
	if err != nil {
		return "", err
	}
	if err := c.status(resp.status); err != nil {
		return "", err
	}
	return string(resp.value()), nil
}
