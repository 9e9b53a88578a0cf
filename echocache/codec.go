package echocache

// Codec turns values of the typed API into bytes and back. Decode must not
// run code chosen by the data (no gob of interfaces, no pickle).
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}
