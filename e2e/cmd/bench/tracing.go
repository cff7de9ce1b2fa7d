package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/fetchmesh/fetchmesh/client"
	"github.com/fetchmesh/fetchmesh/e2e/mesh"
)

// benchTracing measures what tracing costs the static tier: the same
// 2,000-page batch through a mesh that samples every trace and exports it
// to a real Jaeger, and through one with sampling off, in alternating
// rounds of the same run.
func benchTracing(ctx context.Context, root, binDir string, pages, rounds int) error {
	j, err := mesh.StartJaeger(filepath.Join(root, ".tmp/bin/jaeger"), filepath.Join(root, "deploy/jaeger/local.yaml"), "", "", io.Discard)
	if err != nil {
		return err
	}
	defer j.Stop()
	on, err := mesh.Start(mesh.Options{BinDir: binDir, Jaeger: j, EnvAll: []string{"OTEL_TRACES_SAMPLER=always_on"}})
	if err != nil {
		return err
	}
	defer on.Stop()
	off, err := mesh.Start(mesh.Options{BinDir: binDir, EnvAll: []string{"OTEL_TRACES_SAMPLER=always_off"}})
	if err != nil {
		return err
	}
	defer off.Stop()
	urls := func(m *mesh.Mesh) []string {
		u := make([]string, pages)
		for i := range u {
			u[i] = fmt.Sprintf("%s/article/%d", m.TestWebURL, i)
		}
		return u
	}
	cOn, err := client.Dial(on.GatewayGRPC)
	if err != nil {
		return err
	}
	defer cOn.Close()
	cOff, err := client.Dial(off.GatewayGRPC)
	if err != nil {
		return err
	}
	defer cOff.Close()
	uOn, uOff := urls(on), urls(off)
	runMesh(ctx, cOn, uOn[:200]) // warm both
	runMesh(ctx, cOff, uOff[:200])
	var onRates, offRates []float64
	for range rounds {
		r1, err := runMesh(ctx, cOff, uOff)
		if err != nil {
			return err
		}
		r2, err := runMesh(ctx, cOn, uOn)
		if err != nil {
			return err
		}
		offRates, onRates = append(offRates, r1), append(onRates, r2)
	}
	rOn, rOff := median(onRates), median(offRates)
	report("traced_urls_per_s", rOn, "urls/s", "static tier, 100% sampling, every span exported to Jaeger over OTLP")
	report("untraced_urls_per_s", rOff, "urls/s", "the same with sampling off")
	report("tracing_overhead_pct", (1-rOn/rOff)*100, "%", "throughput lost to tracing at 100% sampling; target < 10")
	return nil
}
