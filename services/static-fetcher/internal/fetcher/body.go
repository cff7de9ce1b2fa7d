package fetcher

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/andybalholm/brotli"
	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	"golang.org/x/net/html/charset"
)

// errBodyIdle is the cancel cause when a body stops sending bytes.
var errBodyIdle = errors.New("body idle")

// errCorruptEncoding wraps a failure to decompress the body.
type errCorruptEncoding struct {
	encoding string
	err      error
}

func (e *errCorruptEncoding) Error() string {
	return fmt.Sprintf("corrupt %s body: %v", e.encoding, e.err)
}

// body is a response body read under the limits.
type body struct {
	raw       []byte // decompressed bytes, at most the limit
	truncated bool
	wireBytes int64 // bytes read from the connection
	text      string
	isText    bool
	charset   string
	mediaType string
}

func (b *body) classifyBytes() string {
	if b.isText {
		return b.text
	}
	return ""
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads resp's body, decompressing it, keeping at most max bytes
// of decompressed data (so a gzip bomb costs max bytes, not gigabytes), and
// cancelling the request through cancelIdle when no byte arrives for idle.
func readBody(resp *http.Response, max int64, idle time.Duration, cancelIdle context.CancelCauseFunc) (body, error) {
	wire := &idleReader{r: resp.Body, idle: idle, cancel: cancelIdle}
	defer wire.stop()
	var b body
	dec, err := decoder(resp.Header.Get("Content-Encoding"), wire)
	if err != nil {
		b.wireBytes = wire.n
		return b, err
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if cl := resp.ContentLength; cl > 0 && resp.Header.Get("Content-Encoding") == "" {
		buf.Grow(int(min(cl, max) + 1))
	}
	n, err := buf.ReadFrom(io.LimitReader(dec, max+1))
	b.wireBytes = wire.n
	if err != nil {
		if enc := resp.Header.Get("Content-Encoding"); enc != "" && !isNetErr(err) {
			return b, &errCorruptEncoding{encoding: enc, err: err}
		}
		return b, err
	}
	if n > max {
		b.truncated = true
		buf.Truncate(int(max))
	}
	b.decode(buf.Bytes(), resp.Header.Get("Content-Type"))
	return b, nil
}

// isNetErr tells transport failures from decompression failures.
func isNetErr(err error) bool {
	var ne net.Error
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne) || errors.Is(err, syscall.ECONNRESET)
}

func decoder(encoding string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		return r, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, &errCorruptEncoding{encoding: "gzip", err: err}
		}
		return zr, nil
	case "deflate":
		// "deflate" should be zlib-wrapped, but some servers send raw deflate.
		br := bufio.NewReader(r)
		if hdr, err := br.Peek(2); err == nil && hdr[0]&0x0f == 8 && (uint16(hdr[0])<<8|uint16(hdr[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, &errCorruptEncoding{encoding: "deflate", err: err}
			}
			return zr, nil
		}
		return flate.NewReader(br), nil
	case "br":
		return brotli.NewReader(r), nil
	default:
		// Unknown encoding: keep the bytes as they came.
		return r, nil
	}
}

// decode sets the media type, and for text bodies the UTF-8 text and the
// charset it was decoded from (BOM, Content-Type, <meta>, UTF-8 validity,
// then windows-1252, as browsers do).
func (b *body) decode(raw []byte, contentType string) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt == "" {
		mt, _, _ = mime.ParseMediaType(http.DetectContentType(raw))
	}
	b.mediaType = strings.ToLower(mt)
	b.isText = isTextType(b.mediaType)
	if !b.isText {
		b.raw = bytes.Clone(raw)
		return
	}
	enc, name, _ := charset.DetermineEncoding(raw, contentType)
	b.charset = name
	if name == "utf-8" {
		raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
		if utf8.Valid(raw) {
			b.text = string(raw)
		} else {
			b.text = strings.ToValidUTF8(string(raw), "\uFFFD")
		}
	} else if out, err := enc.NewDecoder().Bytes(raw); err == nil {
		b.text = string(out)
	} else {
		b.text = strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	b.raw = nil
}

func isTextType(mt string) bool {
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/x-javascript",
		"application/ecmascript", "application/xhtml+xml":
		return true
	}
	return false
}

func buildPage(resp *http.Response, b body) *commonv1.Page {
	p := &commonv1.Page{
		StatusCode:  int32(resp.StatusCode),
		FinalUrl:    resp.Request.URL.String(),
		ContentType: b.mediaType,
		Charset:     b.charset,
		Truncated:   b.truncated,
		Redirects:   int32(redirectCount(resp)),
	}
	for name, values := range resp.Header {
		for _, v := range values {
			p.Headers = append(p.Headers, &commonv1.Header{Name: name, Value: v})
		}
	}
	if b.isText {
		p.Body = &commonv1.Page_Text{Text: b.text}
		p.BodyBytes = int64(len(b.text))
	} else {
		p.Body = &commonv1.Page_Binary{Binary: b.raw}
		p.BodyBytes = int64(len(b.raw))
	}
	return p
}

func redirectCount(resp *http.Response) int {
	n := 0
	for r := resp.Request.Response; r != nil; r = r.Request.Response {
		n++
	}
	return n
}

// idleReader cancels the request when a Read waits longer than idle, so a
// body that drips a byte now and then cannot hold a fetch slot; the total
// deadline bounds a body that drips just fast enough.
type idleReader struct {
	r      io.Reader
	idle   time.Duration
	cancel context.CancelCauseFunc
	timer  *time.Timer
	n      int64
}

func (r *idleReader) Read(p []byte) (int, error) {
	if r.timer == nil {
		r.timer = time.AfterFunc(r.idle, func() { r.cancel(errBodyIdle) })
	} else {
		r.timer.Reset(r.idle)
	}
	n, err := r.r.Read(p)
	r.timer.Stop()
	r.n += int64(n)
	return n, err
}

func (r *idleReader) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
}
