package forward

import "sync"

// copyBufSize is the size of the buffers used to copy response bodies.
const copyBufSize = 32 << 10

// bufferPool implements httputil.BufferPool with fixed-size arrays, so Put
// does not allocate (a pool of []byte would box a slice header on every Put).
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v := b.p.Get(); v != nil {
		return v.(*[copyBufSize]byte)[:]
	}
	return new([copyBufSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) < copyBufSize {
		return
	}
	b.p.Put((*[copyBufSize]byte)(buf[:copyBufSize]))
}
