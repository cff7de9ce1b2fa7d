package batch

import (
	"fmt"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"github.com/fetchmesh/fetchmesh/services/shared/target"
)

// Limits on options, from the capacity guide.
const (
	MaxURLs                  = 10_000
	DefaultStaticConcurrency = 100
	MaxStaticConcurrency     = 500
	DefaultDecodoConcurrency = 3
	MaxDecodoConcurrency     = 10
	DefaultURLTimeout        = 120 * time.Second
	MinURLTimeout            = time.Second
	MaxURLTimeout            = 600 * time.Second
	DefaultMaxBodyBytes      = 10 << 20
	MaxMaxBodyBytes          = 32 << 20
	DefaultRenderWait        = 30 * time.Second
	MaxRenderWait            = 120 * time.Second
)

// Options are a batch's options with defaults applied and limits checked.
type Options struct {
	Mode              gatewayv1.Mode
	StaticConcurrency int
	DecodoConcurrency int
	URLTimeout        time.Duration
	MaxBodyBytes      int64
	Headers           []*commonv1.Header
	Render            *commonv1.RenderOptions
	Decodo            *gatewayv1.DecodoOptions
	DecodoMaxCalls    int
}

// ResolveOptions applies defaults to o and checks its limits. decodoDefault
// is the operator's default per-batch Decodo call budget. The error text is
// safe to return to clients and names the field and its limit.
func ResolveOptions(o *gatewayv1.FetchOptions, decodoDefault int) (Options, error) {
	r := Options{
		Mode:              o.GetMode(),
		StaticConcurrency: int(o.GetStaticConcurrency()),
		DecodoConcurrency: int(o.GetDecodoConcurrency()),
		URLTimeout:        o.GetUrlTimeout().AsDuration(),
		MaxBodyBytes:      o.GetMaxBodyBytes(),
		Headers:           o.GetHeaders(),
		Render:            o.GetRender(),
		Decodo:            o.GetDecodo(),
		DecodoMaxCalls:    int(o.GetDecodo().GetMaxCalls()),
	}
	if _, ok := gatewayv1.Mode_name[int32(r.Mode)]; !ok {
		return r, fmt.Errorf("options.mode %d is not a known mode", r.Mode)
	}
	if r.Mode == gatewayv1.Mode_MODE_UNSPECIFIED {
		r.Mode = gatewayv1.Mode_MODE_AUTO
	}
	if err := intOption("options.static_concurrency", &r.StaticConcurrency, DefaultStaticConcurrency, MaxStaticConcurrency); err != nil {
		return r, err
	}
	if err := intOption("options.decodo_concurrency", &r.DecodoConcurrency, DefaultDecodoConcurrency, MaxDecodoConcurrency); err != nil {
		return r, err
	}
	if r.DecodoMaxCalls < 0 {
		return r, fmt.Errorf("options.decodo.max_calls %d is negative", r.DecodoMaxCalls)
	}
	if r.DecodoMaxCalls == 0 {
		r.DecodoMaxCalls = decodoDefault
	}
	if o.GetUrlTimeout() != nil && !o.GetUrlTimeout().IsValid() {
		return r, fmt.Errorf("options.url_timeout is not a valid duration")
	}
	if r.URLTimeout == 0 {
		r.URLTimeout = DefaultURLTimeout
	}
	if r.URLTimeout < MinURLTimeout || r.URLTimeout > MaxURLTimeout {
		return r, fmt.Errorf("options.url_timeout %s is outside %s..%s", r.URLTimeout, MinURLTimeout, MaxURLTimeout)
	}
	if r.MaxBodyBytes == 0 {
		r.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if r.MaxBodyBytes < 1 || r.MaxBodyBytes > MaxMaxBodyBytes {
		return r, fmt.Errorf("options.max_body_bytes %d is outside 1..%d", r.MaxBodyBytes, MaxMaxBodyBytes)
	}
	if len(r.Headers) > target.MaxHeaders {
		return r, fmt.Errorf("options.headers has %d headers, more than %d", len(r.Headers), target.MaxHeaders)
	}
	for _, h := range r.Headers {
		if err := target.CheckHeader(h.GetName(), h.GetValue()); err != nil {
			return r, fmt.Errorf("options.headers: %w", err)
		}
	}
	return r, resolveRender(&r)
}

func resolveRender(r *Options) error {
	ro := &commonv1.RenderOptions{}
	if r.Render != nil {
		ro = cloneRender(r.Render)
	}
	wait := ro.GetMaxWait().AsDuration()
	if wait == 0 {
		wait = DefaultRenderWait
	}
	if wait < 0 || wait > MaxRenderWait {
		return fmt.Errorf("options.render.max_wait %s is outside 0..%s", wait, MaxRenderWait)
	}
	for _, d := range []struct {
		name string
		v    *int32
		def  int32
	}{{"viewport_width", &ro.ViewportWidth, 1366}, {"viewport_height", &ro.ViewportHeight, 768}} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 200 || *d.v > 4096 {
			return fmt.Errorf("options.render.%s %d is outside 200..4096", d.name, *d.v)
		}
	}
	if len(ro.GetWaitForSelector()) > 1024 || len(ro.GetUserAgent()) > 1024 {
		return fmt.Errorf("options.render: wait_for_selector and user_agent are limited to 1024 bytes")
	}
	r.Render = ro
	return nil
}

func cloneRender(o *commonv1.RenderOptions) *commonv1.RenderOptions {
	return &commonv1.RenderOptions{
		WaitForSelector: o.GetWaitForSelector(), MaxWait: o.GetMaxWait(), LoadImages: o.GetLoadImages(),
		UserAgent: o.GetUserAgent(), ViewportWidth: o.GetViewportWidth(), ViewportHeight: o.GetViewportHeight(),
	}
}

func intOption(name string, v *int, def, max int) error {
	if *v == 0 {
		*v = def
	}
	if *v < 1 || *v > max {
		return fmt.Errorf("%s %d is outside 1..%d", name, *v, max)
	}
	return nil
}
