package mockapi

// ring holds the last max values added; the zero ring holds none.
type ring[T any] struct {
	max   int
	buf   []T
	start int // index of the oldest entry once buf is full
}

func newRing[T any](max int) ring[T] { return ring[T]{max: max} }

// add appends v and returns the value it pushed out, if any.
func (r *ring[T]) add(v T) (old T, dropped bool) {
	if len(r.buf) < r.max {
		r.buf = append(r.buf, v)
		return old, false
	}
	old = r.buf[r.start]
	r.buf[r.start] = v
	r.start = (r.start + 1) % r.max
	return old, true
}

// list returns a copy, oldest first.
func (r *ring[T]) list() []T {
	out := make([]T, 0, len(r.buf))
	out = append(out, r.buf[r.start:]...)
	return append(out, r.buf[:r.start]...)
}
