// Package wire holds what fetchmesh's gRPC clients and servers use to move
// large messages (pages of ~100 KB and up) cheaply: a protobuf codec and the
// buffer pool it draws from. The gateway client and every mesh service use
// both.
package wire

import (
	"fmt"
	"math/bits"
	"sync"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// Codec marshals protobuf messages like grpc's own codec, but with buffers
// from BufferPool. grpc's codec takes them from its default pool, whose
// tiers jump from 32 KiB to 1 MiB and are zeroed: every ~100 KB page cost
// a zeroed 1 MiB buffer on each hop, measured as ~12% of the gateway's CPU.
// Force it on a connection with grpc.ForceCodecV2 (grpc.ForceServerCodecV2
// on a server).
type Codec struct{}

func (Codec) Name() string { return "proto" }

func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	m := message(v)
	if m == nil {
		return nil, fmt.Errorf("wire codec: %T is not a protobuf message", v)
	}
	size := proto.Size(m)
	opts := proto.MarshalOptions{UseCachedSize: true} // the size just computed
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := BufferPool.Get(size)
	out, err := opts.MarshalAppend((*buf)[:0], m)
	if err != nil {
		BufferPool.Put(buf)
		return nil, err
	}
	*buf = out
	return mem.BufferSlice{mem.NewBuffer(buf, BufferPool)}, nil
}

func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m := message(v)
	if m == nil {
		return fmt.Errorf("wire codec: %T is not a protobuf message", v)
	}
	buf := data.MaterializeToBuffer(BufferPool)
	defer buf.Free() // Unmarshal copies what it keeps
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

func message(v any) proto.Message {
	switch v := v.(type) {
	case proto.Message:
		return v
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(v)
	}
	return nil
}

// BufferPool keeps buffers in a tier per power of two up to 32 MiB. grpc's
// default pool jumps from 32 KiB to 1 MiB, so each ~100 KB page would take a
// 1 MiB buffer.
var BufferPool mem.BufferPool = &sizedPool{}

// sizedPool does not zero the buffers it hands out: grpc writes every byte
// of a buffer it takes before reading it (its transport pools its own reads
// the same way).
type sizedPool struct {
	tiers [maxTier + 1]sync.Pool
}

const maxTier = 25 // 32 MiB; larger buffers are not kept

func (p *sizedPool) Get(n int) *[]byte {
	if n <= 0 || n > 1<<maxTier {
		b := make([]byte, n)
		return &b
	}
	t := bits.Len(uint(n - 1)) // the smallest power of two >= n
	if b, ok := p.tiers[t].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<t)
	return &b
}

func (p *sizedPool) Put(b *[]byte) {
	c := cap(*b)
	if c == 0 || c > 1<<maxTier || c&(c-1) != 0 {
		return // not one of ours
	}
	p.tiers[bits.Len(uint(c-1))].Put(b)
}
