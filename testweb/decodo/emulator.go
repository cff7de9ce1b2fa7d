// Package decodo is a local emulator of the Decodo Web Scraping API, for
// tests and demos: no machine here reaches the real API, so the project's
// client is tested against this. It speaks the API as documented: Basic
// auth, the request fields and their validation, the response shape and
// timestamps, the error codes and envelopes, Retry-After on 429, and the
// async task endpoints. It fetches targets only from allowed origins (the
// test web), sending the test web's pass header, so a page that is a bot
// wall to the static and render tiers comes back through Decodo, as in
// real life. It does not run JavaScript: app shells come back as shells.
//
// Failures are injected per target URL with an "emu" query parameter, so
// parallel tests do not disturb each other:
//
//	emu=429x2     the first 2 calls for this URL answer 429 (Retry-After: 1)
//	emu=500x3     the first 3 calls answer 500 (also 502, 503, 504, 524)
//	emu=failed    every call answers the 200 "failed" envelope (613)
//	emu=slow3s    every call takes 3 s before answering
//	emu=400       every call answers 400 with errors[]
package decodo

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fetchmesh/fetchmesh/testweb"
)

// Limits of the documented API.
const (
	MaxURLLength = 2056
	MaxBatchURLs = 3000
	timeLayout   = "2006-01-02 15:04:05"
	taskTTL      = 24 * time.Hour
	maxTasks     = 100_000
)

var (
	deviceTypes = []string{"desktop", "desktop_chrome", "desktop_firefox", "mobile", "mobile_android", "mobile_ios"}
	headless    = []string{"", "html", "png"}
	proxyPools  = []string{"", "standard", "premium"}
	emuFault    = regexp.MustCompile(`^(429|500|502|503|504|524)x(\d+)$|^failed$|^slow(\d+(?:ms|s))$|^400$`)
)

// Options configure the emulator.
type Options struct {
	// Username and Password are the credentials it accepts.
	Username, Password string
	// AllowOrigins are scheme://host:port prefixes it may fetch from.
	AllowOrigins []string
}

// Emulator is an http.Handler.
type Emulator struct {
	token   string
	allow   []string
	client  *http.Client
	mux     *http.ServeMux
	mu      sync.Mutex
	calls   map[string]int // per target URL, for failure injection
	tasks   map[string]*task
	order   []string // task ids by creation, for eviction
	current atomic.Int64
	peak    atomic.Int64
	total   atomic.Int64
	billed  atomic.Int64
}

type task struct {
	ID      string
	Params  scrapeRequest
	Created time.Time
	Result  *result
	Faulted bool
}

// New returns an emulator.
func New(o Options) *Emulator {
	e := &Emulator{
		token:  base64.StdEncoding.EncodeToString([]byte(o.Username + ":" + o.Password)),
		allow:  o.AllowOrigins,
		client: &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return nil }},
		mux:    http.NewServeMux(),
		calls:  map[string]int{}, tasks: map[string]*task{},
	}
	e.mux.HandleFunc("POST /v2/scrape", e.auth(e.scrape))
	e.mux.HandleFunc("POST /v3/task", e.auth(e.createTask))
	e.mux.HandleFunc("POST /v3/task/batch", e.auth(e.createBatch))
	e.mux.HandleFunc("GET /v3/task/{id}", e.auth(e.taskStatus))
	e.mux.HandleFunc("GET /v3/task/{id}/results", e.auth(e.taskResults))
	e.mux.HandleFunc("GET /_emulator/stats", e.stats)
	return e
}

func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.mux.ServeHTTP(w, r) }

// Stats are what the emulator saw.
type Stats struct {
	Requests      int64 `json:"requests"`
	Billed        int64 `json:"billed"`
	MaxConcurrent int64 `json:"max_concurrent"`
}

// Stats returns the counters.
func (e *Emulator) Stats() Stats {
	return Stats{Requests: e.total.Load(), Billed: e.billed.Load(), MaxConcurrent: e.peak.Load()}
}

func (e *Emulator) stats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, e.Stats())
}

func (e *Emulator) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e.total.Add(1)
		n := e.current.Add(1)
		defer e.current.Add(-1)
		for {
			p := e.peak.Load()
			if n <= p || e.peak.CompareAndSwap(p, n) {
				break
			}
		}
		if r.Header.Get("Authorization") != "Basic "+e.token {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Unauthorized"})
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// flexObject accepts {} or [] (the API echoes empty objects as []).
type flexObject map[string]string

func (f *flexObject) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "[]" || s == "null" {
		*f = nil
		return nil
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("must be an object of strings")
	}
	*f = m
	return nil
}

type scrapeRequest struct {
	Target                string          `json:"target"`
	URL                   json.RawMessage `json:"url"`
	Headless              string          `json:"headless,omitempty"`
	Geo                   string          `json:"geo,omitempty"`
	Locale                string          `json:"locale,omitempty"`
	DeviceType            string          `json:"device_type,omitempty"`
	SessionID             string          `json:"session_id,omitempty"`
	Headers               flexObject      `json:"headers,omitempty"`
	Cookies               flexObject      `json:"cookies,omitempty"`
	ForceHeaders          bool            `json:"force_headers,omitempty"`
	ForceCookies          bool            `json:"force_cookies,omitempty"`
	HTTPMethod            string          `json:"http_method,omitempty"`
	Payload               string          `json:"payload,omitempty"`
	SuccessfulStatusCodes []int           `json:"successful_status_codes,omitempty"`
	Markdown              bool            `json:"markdown,omitempty"`
	XHR                   bool            `json:"xhr,omitempty"`
	Parse                 bool            `json:"parse,omitempty"`
	ProxyPool             string          `json:"proxy_pool,omitempty"`
}

type result struct {
	Content    string            `json:"content"`
	StatusCode int               `json:"status_code"`
	URL        string            `json:"url"`
	TaskID     string            `json:"task_id"`
	CreatedAt  string            `json:"created_at"`
	UpdatedAt  string            `json:"updated_at"`
	Headers    map[string]string `json:"headers,omitempty"`
}

// validate checks the fields as the API does; the errors go to errors[].
func (q *scrapeRequest) validate(batch bool) ([]string, []string) {
	var errs, urls []string
	if q.Target == "" {
		errs = append(errs, "target: field required")
	} else if q.Target != "universal" {
		errs = append(errs, fmt.Sprintf("target: unsupported value %q", q.Target))
	}
	if batch {
		if err := json.Unmarshal(q.URL, &urls); err != nil || len(urls) == 0 {
			errs = append(errs, "url: a non-empty array of URLs is required")
		} else if len(urls) > MaxBatchURLs {
			errs = append(errs, fmt.Sprintf("url: at most %d URLs", MaxBatchURLs))
		}
	} else {
		var u string
		if err := json.Unmarshal(q.URL, &u); err != nil || u == "" {
			errs = append(errs, "url: field required")
		}
		urls = []string{u}
	}
	for _, u := range urls {
		if len(u) > MaxURLLength {
			errs = append(errs, fmt.Sprintf("url: ensure this value has at most %d characters", MaxURLLength))
		} else if p, err := url.Parse(u); u != "" && (err != nil || (p.Scheme != "http" && p.Scheme != "https")) {
			errs = append(errs, "url: invalid URL")
		}
	}
	if !slices.Contains(headless, q.Headless) {
		errs = append(errs, "headless: must be html or png")
	}
	if q.DeviceType != "" && !slices.Contains(deviceTypes, q.DeviceType) {
		errs = append(errs, "device_type: unsupported value")
	}
	if !slices.Contains(proxyPools, q.ProxyPool) {
		errs = append(errs, "proxy_pool: must be standard or premium")
	}
	return errs, urls
}

func decode(w http.ResponseWriter, r *http.Request, batch bool) (*scrapeRequest, []string, bool) {
	var q scrapeRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil || json.Unmarshal(body, &q) != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []string{"request body must be a JSON object"}})
		return nil, nil, false
	}
	errs, urls := q.validate(batch)
	if len(errs) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": errs})
		return nil, nil, false
	}
	return &q, urls, true
}

func newTaskID() string {
	return strconv.FormatInt(6_000_000_000_000_000_000+rand.Int64N(3_000_000_000_000_000_000), 10) // 19 digits
}

// scrape is the synchronous endpoint.
func (e *Emulator) scrape(w http.ResponseWriter, r *http.Request) {
	q, urls, ok := decode(w, r, false)
	if !ok {
		return
	}
	target := urls[0]
	fault := e.fault(target)
	switch {
	case fault == "400":
		e.billed.Add(1)
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []string{"url: the target rejected the request parameters"}})
		return
	case strings.HasPrefix(fault, "slow"):
		d, _ := time.ParseDuration(strings.TrimPrefix(fault, "slow"))
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	case fault == "failed":
		e.billed.Add(1)
		writeJSON(w, http.StatusOK, map[string]any{"status": "failed", "status_code": 613, "message": "We were not able to scrape the target"})
		return
	case fault != "":
		code, _ := strconv.Atoi(fault)
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
			e.billed.Add(1)
			writeJSON(w, code, map[string]any{"message": "Too many requests"})
			return
		}
		writeJSON(w, code, map[string]any{"message": "Internal server error"})
		return
	}
	res, err := e.fetch(r, q, target)
	if err != nil {
		e.billed.Add(1)
		writeJSON(w, http.StatusOK, map[string]any{"status": "failed", "status_code": 613, "message": "We were not able to scrape the target"})
		return
	}
	e.billed.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{"results": []*result{res}})
}

// fault returns the failure to inject for this call of target, if any.
func (e *Emulator) fault(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return ""
	}
	spec := u.Query().Get("emu")
	m := emuFault.FindStringSubmatch(spec)
	if m == nil {
		return ""
	}
	if m[1] == "" {
		return spec // failed, slowNs, 400: every call
	}
	times, _ := strconv.Atoi(m[2])
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls[target]++
	if e.calls[target] <= times {
		return m[1]
	}
	return ""
}

// fetch gets the target as a residential exit would, from an allowed origin.
func (e *Emulator) fetch(r *http.Request, q *scrapeRequest, target string) (*result, error) {
	allowed := false
	for _, o := range e.allow {
		allowed = allowed || strings.HasPrefix(target, o)
	}
	if !allowed {
		return nil, fmt.Errorf("target outside the allowed origins")
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range q.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set(testweb.PassHeader, testweb.PassToken)
	started := time.Now().UTC()
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	headers := map[string]string{}
	for k := range resp.Header {
		headers[strings.ToLower(k)] = resp.Header.Get(k)
	}
	return &result{Content: string(body), StatusCode: resp.StatusCode, URL: resp.Request.URL.String(), TaskID: newTaskID(),
		CreatedAt: started.Format(timeLayout), UpdatedAt: time.Now().UTC().Format(timeLayout), Headers: headers}, nil
}
