// Package rest is the gateway's REST facade: grpc-gateway in front of the
// gateway's own gRPC server, the OpenAPI document, and a health route.
package rest

import (
	"context"
	"net/http"

	"github.com/fetchmesh/fetchmesh/gen"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"github.com/fetchmesh/fetchmesh/services/shared/rpc"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// New returns the REST handler, proxying to the gateway's gRPC server at
// grpcAddr. Request bodies above maxRequest bytes are refused with 413.
func New(ctx context.Context, grpcAddr string, maxRequest int64) (http.Handler, func() error, error) {
	conn, err := rpc.Dial(grpcAddr, grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(int(maxRequest))))
	if err != nil {
		return nil, nil, err
	}
	mux := runtime.NewServeMux(
		// Zero values are written (index 0 must show), unset messages are left
		// out; enums are names; text bodies are strings.
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitDefaultValues: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
		runtime.WithHealthzEndpoint(healthpb.NewHealthClient(conn)),
	)
	if err := gatewayv1.RegisterGatewayServiceHandler(ctx, mux, conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	top := http.NewServeMux()
	top.Handle("/v1/", http.MaxBytesHandler(mux, maxRequest))
	top.Handle("GET /healthz", mux)
	top.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(gen.GatewayOpenAPI)
	})
	return top, conn.Close, nil
}
