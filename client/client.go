// Package client is the Go client of fetchmesh's gateway.
//
//	c, err := client.Dial("127.0.0.1:7100")
//	for ev, err := range c.FetchBatch(ctx, urls, nil) {
//		if err != nil { ... }          // transport or batch error
//		if r := ev.GetResult(); r != nil { ... } // one URL is final
//	}
package client

import (
	"context"
	"errors"
	"io"
	"iter"

	"github.com/fetchmesh/fetchmesh/client/wire"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
)

// MaxRequestBytes is the largest batch request the client sends: 10,000
// URLs of 8 KiB each, with room to spare.
const MaxRequestBytes = 100 << 20

// MaxResponseBytes is the largest single result the client accepts: a
// 32 MiB page plus its metadata.
const MaxResponseBytes = 40 << 20

// Client talks to a gateway.
type Client struct {
	conn *grpc.ClientConn
	api  gatewayv1.GatewayServiceClient
}

// Dial connects to a gateway at addr (host:port), without TLS unless opts
// say otherwise.
func Dial(addr string, opts ...grpc.DialOption) (*Client, error) {
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(MaxRequestBytes), grpc.MaxCallRecvMsgSize(MaxResponseBytes), grpc.ForceCodecV2(wire.Codec{})),
		// Results are large messages: wide windows and buffers, and the
		// codec and buffer pool of package wire.
		grpc.WithInitialWindowSize(4 << 20),
		grpc.WithInitialConnWindowSize(32 << 20),
		grpc.WithReadBufferSize(256 << 10),
		experimental.WithBufferPool(wire.BufferPool),
	}
	conn, err := grpc.NewClient(addr, append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, api: gatewayv1.NewGatewayServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// API is the generated client, for calls this package does not wrap.
func (c *Client) API() gatewayv1.GatewayServiceClient { return c.api }

// FetchBatch sends a batch and yields its events as they arrive: accepted,
// one result per URL, then the summary. A non-nil error ends the sequence.
// Stopping the iteration early cancels the batch.
func (c *Client) FetchBatch(ctx context.Context, urls []string, opts *gatewayv1.FetchOptions) iter.Seq2[*gatewayv1.FetchBatchResponse, error] {
	return func(yield func(*gatewayv1.FetchBatchResponse, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.api.FetchBatch(ctx, &gatewayv1.FetchBatchRequest{Urls: urls, Options: opts})
		if err != nil {
			yield(nil, err)
			return
		}
		for {
			ev, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

// Fetch fetches up to 100 URLs and returns every result by index.
func (c *Client) Fetch(ctx context.Context, urls []string, opts *gatewayv1.FetchOptions) (*gatewayv1.FetchResponse, error) {
	return c.api.Fetch(ctx, &gatewayv1.FetchRequest{Urls: urls, Options: opts})
}
