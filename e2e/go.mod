module github.com/fetchmesh/fetchmesh/e2e

go 1.26.0

replace (
	github.com/fetchmesh/fetchmesh/client => ../client
	github.com/fetchmesh/fetchmesh/gen => ../gen
	github.com/fetchmesh/fetchmesh/services/render-node => ../services/render-node
	github.com/fetchmesh/fetchmesh/services/shared => ../services/shared
	github.com/fetchmesh/fetchmesh/testweb => ../testweb
)

require (
	github.com/chromedp/chromedp v0.23.0
	github.com/fetchmesh/fetchmesh/client v0.0.0
	github.com/fetchmesh/fetchmesh/gen v0.0.0
	github.com/fetchmesh/fetchmesh/services/render-node v0.0.0
	github.com/fetchmesh/fetchmesh/services/shared v0.0.0
	github.com/fetchmesh/fetchmesh/testweb v0.0.0-00010101000000-000000000000
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/grpc-ecosystem/grpc-gateway/v2 v2.33.0 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc v0.72.0 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	golang.org/x/net v0.61.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20261110000943-09e21b237f2c // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261104224025-d1e00e9f33ab // indirect
)
