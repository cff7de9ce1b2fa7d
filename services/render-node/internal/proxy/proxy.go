// Package proxy is the render node's forward proxy. Chrome sends every
// request through it (documents, redirects, iframes, subresources, XHR,
// WebSockets), and it dials with the same connect-time SSRF guard as the
// static tier, so Chrome's own URL parsing (which reads 0x7f000001 or 127.1
// as loopback) cannot reach an internal address.
package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/fetchmesh/fetchmesh/services/shared/ssrf"
)

// RefusedHeader marks a response the proxy made up because the guard
// refused the target, so the node can report it as a forbidden address.
const RefusedHeader = "X-Fetchmesh-Refused"

// Proxy is a filtering HTTP proxy on loopback.
type Proxy struct {
	guard     *ssrf.Guard
	dialer    *net.Dialer
	transport *http.Transport
	srv       *http.Server
	lis       net.Listener
	log       *slog.Logger
	conns     sync.WaitGroup
}

// Start listens on a free loopback port and serves.
func Start(guard *ssrf.Guard, log *slog.Logger) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{guard: guard, dialer: guard.Dialer(10 * time.Second), lis: lis, log: log}
	p.transport = &http.Transport{
		Proxy:                 nil,
		DialContext:           p.dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       60 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(lis)
	return p, nil
}

// Addr is host:port for Chrome's --proxy-server.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// Close stops the proxy and its tunnels.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	p.transport.CloseIdleConnections()
	return err
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.tunnel(w, r)
		return
	}
	if r.URL.Host == "" || (r.URL.Scheme != "http" && r.URL.Scheme != "ws") {
		http.Error(w, "fetchmesh render proxy: absolute http URLs only", http.StatusBadRequest)
		return
	}
	p.forward(w, r)
}

func (p *Proxy) refuse(w http.ResponseWriter, err error) {
	w.Header().Set(RefusedHeader, err.Error())
	http.Error(w, "fetchmesh: "+err.Error(), http.StatusForbidden)
}

// tunnel serves CONNECT (https and wss): dial through the guard, then copy.
func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	upstream, err := p.dialer.DialContext(ctx, "tcp", r.Host)
	if err != nil {
		var be *ssrf.BlockedError
		if errors.As(err, &be) {
			p.refuse(w, be)
			return
		}
		http.Error(w, "fetchmesh: "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		http.Error(w, "hijack unsupported", http.StatusInternalServerError)
		return
	}
	client, buf, err := hj.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	client.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
	p.conns.Add(1)
	go func() {
		defer p.conns.Done()
		splice(client, buf, upstream)
	}()
}

func splice(client net.Conn, buffered io.Reader, upstream net.Conn) {
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(upstream, buffered)
		if tc, ok := upstream.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() { io.Copy(client, upstream); done <- struct{}{} }()
	<-done
	<-done
	client.Close()
	upstream.Close()
}

// Hop-by-hop headers are not forwarded.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// forward serves plain-http requests in absolute form.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		var be *ssrf.BlockedError
		if errors.As(err, &be) {
			p.refuse(w, be)
			return
		}
		http.Error(w, "fetchmesh: upstream failed", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range hopHeaders {
		resp.Header.Del(h)
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}
