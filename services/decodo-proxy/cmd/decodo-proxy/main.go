// Command decodo-proxy is the only holder of the Decodo credentials: it
// calls the Decodo Web Scraping API for the gateways under one account-wide
// rate and concurrency limit, with bounded retries, a circuit breaker and a
// daily budget.
//
// Credentials never come from a flag (flags show in process lists): set
// FETCHMESH_DECODO_TOKEN (base64 of user:pass, as the dashboard issues it),
// or FETCHMESH_DECODO_USERNAME and FETCHMESH_DECODO_PASSWORD, or point
// -decodo-token-file at a file holding the token. Without them every call
// answers "Decodo not configured" and the rest of the mesh works.
package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	decodoproxyv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/decodoproxy/v1"
	"github.com/fetchmesh/fetchmesh/services/decodo-proxy/internal/api"
	"github.com/fetchmesh/fetchmesh/services/decodo-proxy/internal/scrape"
	"github.com/fetchmesh/fetchmesh/services/decodo-proxy/internal/server"
	"github.com/fetchmesh/fetchmesh/services/shared/config"
	"github.com/fetchmesh/fetchmesh/services/shared/lifecycle"
	"github.com/fetchmesh/fetchmesh/services/shared/rpc"
	"github.com/fetchmesh/fetchmesh/services/shared/telemetry"
)

type cfg struct {
	telemetry.Flags
	Listen           string        `flag:"listen" default:"127.0.0.1:7104" help:"gRPC listen address"`
	APIURL           string        `flag:"api-url" default:"https://scraper-api.decodo.com" help:"Decodo API base URL"`
	TokenFile        string        `flag:"decodo-token-file" help:"file holding the Basic token (base64 of user:pass)"`
	Rate             float64       `flag:"rate" default:"10" help:"account-wide calls per second (set to the plan)"`
	Concurrency      int           `flag:"concurrency" default:"10" help:"account-wide calls in flight"`
	DailyCap         int64         `flag:"daily-cap" default:"0" help:"calls per UTC day across all batches (0: no cap)"`
	Retries          int           `flag:"retries" default:"2" help:"retries of 429, 5xx and network errors"`
	Backoff          time.Duration `flag:"backoff" default:"1s" help:"first retry backoff; doubles each retry, plus jitter"`
	BreakerThreshold int           `flag:"breaker-threshold" default:"5" help:"consecutive failures that pause calls"`
	BreakerCooldown  time.Duration `flag:"breaker-cooldown" default:"30s" help:"how long calls pause"`
	Timeout          time.Duration `flag:"timeout" default:"180s" help:"per scrape, retries included, when the caller names none"`
}

func (c *cfg) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("-listen %q: %w", c.Listen, err)
	}
	if c.Rate <= 0 || c.Concurrency < 1 || c.Retries < 0 || c.Retries > 5 || c.BreakerThreshold < 1 {
		return fmt.Errorf("-rate must be > 0, -concurrency >= 1, -retries 0..5, -breaker-threshold >= 1")
	}
	return nil
}

// token reads the credentials from the environment or the token file.
func token(c cfg) (string, error) {
	if t := strings.TrimSpace(os.Getenv("FETCHMESH_DECODO_TOKEN")); t != "" {
		return t, nil
	}
	if u, p := os.Getenv("FETCHMESH_DECODO_USERNAME"), os.Getenv("FETCHMESH_DECODO_PASSWORD"); u != "" && p != "" {
		return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)), nil
	}
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return "", fmt.Errorf("reading -decodo-token-file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

func main() {
	lifecycle.Main("decodo-proxy", func(ctx context.Context, log *slog.Logger) error {
		var c cfg
		if err := config.Load(&c, "decodo-proxy", os.Args[1:]); err != nil {
			return err
		}
		tel, err := telemetry.Setup(ctx, "decodo-proxy", telemetry.Version, c.MetricsListen, log)
		if err != nil {
			return err
		}
		defer tel.Shutdown(context.Background())
		tok, err := token(c)
		if err != nil {
			return err
		}
		var caller scrape.Caller
		if tok != "" {
			caller = api.New(c.APIURL, tok, 32<<20)
		} else {
			log.Warn("no Decodo credentials: every call will answer \"Decodo not configured\"")
		}
		limiter := scrape.NewLimiter(ctx, c.Rate, c.Concurrency)
		s := scrape.New(caller, limiter, scrape.NewBreaker(c.BreakerThreshold, c.BreakerCooldown), scrape.NewBudget(c.DailyCap),
			scrape.Config{Retries: c.Retries, BackoffBase: c.Backoff, DefaultTimeout: c.Timeout}, log)
		if err := s.RegisterMetrics(); err != nil {
			return err
		}
		lis, err := net.Listen("tcp", c.Listen)
		if err != nil {
			return err
		}
		srv := rpc.NewServer(0)
		decodoproxyv1.RegisterDecodoProxyServiceServer(srv, server.New(s))
		srv.Serving(decodoproxyv1.DecodoProxyService_ServiceDesc.ServiceName)
		log.Info("serving", "grpc", lis.Addr().String(), "metrics", tel.MetricsAddr(), "api", c.APIURL, "configured", tok != "", "rate", c.Rate, "concurrency", c.Concurrency, "daily_cap", c.DailyCap)
		return lifecycle.ServeGRPC(ctx, srv.Server, lis)
	})
}
