package wire

import (
	"strings"
	"testing"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	"google.golang.org/protobuf/proto"
)

func TestSizedPool(t *testing.T) {
	p := &sizedPool{}
	for _, n := range []int{0, 1, 255, 256, 257, 100 << 10, 1 << 20, 1<<25 + 1} {
		b := p.Get(n)
		if len(*b) != n {
			t.Errorf("Get(%d): len %d", n, len(*b))
		}
		if c := cap(*b); n > 0 && n <= 1<<maxTier && (c < n || c&(c-1) != 0 || c >= 2*n && n > 1) {
			t.Errorf("Get(%d): cap %d is not the smallest power of two that holds it", n, c)
		}
		p.Put(b)
	}
	// A buffer given back is handed out again for any size of its tier
	// (sync.Pool may drop it, so only a reuse that happens is checked).
	b := p.Get(100 << 10)
	(*b)[0] = 42
	p.Put(b)
	if again := p.Get(90 << 10); &(*again)[0] == &(*b)[0] && len(*again) != 90<<10 {
		t.Errorf("reused buffer has len %d, want %d", len(*again), 90<<10)
	}
	odd := make([]byte, 300)
	p.Put(&odd) // not a power of two: ignored, not a panic
}

func TestCodecRoundTripOutlivesItsBuffers(t *testing.T) {
	text := strings.Repeat("a page of text ", 8<<10) // ~120 KB: a pooled buffer
	for _, page := range []*commonv1.Page{{Title: "small"}, {Title: "large", Body: &commonv1.Page_Text{Text: text}}} {
		data, err := Codec{}.Marshal(page)
		if err != nil {
			t.Fatal(err)
		}
		var got commonv1.Page
		if err := (Codec{}).Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		data.Free()
		// Dirty buffers go round again: scribble over every one the pool
		// hands out, as the next message would.
		for range 4 {
			b := BufferPool.Get(len(text) + 1024)
			for i := range *b {
				(*b)[i] = 'x'
			}
			BufferPool.Put(b)
		}
		if !proto.Equal(&got, page) {
			t.Errorf("%s page: the decoded message changed after its buffers were reused", page.GetTitle())
		}
	}
	if _, err := (Codec{}).Marshal("not a message"); err == nil {
		t.Error("marshaling a string: no error")
	}
}
