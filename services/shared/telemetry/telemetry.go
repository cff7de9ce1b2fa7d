// Package telemetry sets up OpenTelemetry for a service: traces exported
// over OTLP (configured by the standard OTEL_* variables, exported only when
// an OTLP endpoint is set), W3C TraceContext and Baggage propagation, and
// metrics served in the Prometheus format on the service's metrics port.
package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// Telemetry is a service's tracer and meter providers and metrics server.
type Telemetry struct {
	tp      *sdktrace.TracerProvider
	mp      *sdkmetric.MeterProvider
	metrics *http.Server
	lis     net.Listener
}

// Exporting reports whether an OTLP endpoint is configured.
func Exporting() bool {
	if os.Getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs the global providers for service and serves /metrics on
// metricsListen (empty: no metrics server).
func Setup(ctx context.Context, service, version, metricsListen string, log *slog.Logger) (*Telemetry, error) {
	// Our attributes first, so OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// can override them.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithFromEnv())
	if err != nil {
		return nil, err
	}
	// The sampler follows OTEL_TRACES_SAMPLER (parent-based, always on, by
	// default). Spans are always created, so results and logs carry trace
	// ids; they leave the process only when an endpoint is configured.
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if Exporting() {
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	t := &Telemetry{tp: sdktrace.NewTracerProvider(opts...)}
	otel.SetTracerProvider(t.tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Debug("telemetry", "err", err) }))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	otel.SetMeterProvider(t.mp)
	if metricsListen != "" {
		lis, err := net.Listen("tcp", metricsListen)
		if err != nil {
			return nil, err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		t.lis, t.metrics = lis, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go t.metrics.Serve(lis)
	}
	return t, nil
}

// MetricsAddr is the metrics server's address ("" when none).
func (t *Telemetry) MetricsAddr() string {
	if t.lis == nil {
		return ""
	}
	return t.lis.Addr().String()
}

// Shutdown flushes spans and stops the metrics server.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var errs []error
	if t.metrics != nil {
		errs = append(errs, t.metrics.Shutdown(ctx))
	}
	errs = append(errs, t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
	return errors.Join(errs...)
}

// Version is the mesh's version, reported in traces and to the coordinator.
const Version = "0.1.0"

// Flags are the telemetry flags every service embeds in its config.
type Flags struct {
	MetricsListen string `flag:"metrics-listen" default:"127.0.0.1:0" help:"Prometheus /metrics listen address (empty: no metrics server)"`
}
