package scrape_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	decodoproxyv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/decodoproxy/v1"
	"github.com/fetchmesh/fetchmesh/services/decodo-proxy/internal/api"
	"github.com/fetchmesh/fetchmesh/services/decodo-proxy/internal/scrape"
	"github.com/fetchmesh/fetchmesh/testweb"
	"github.com/fetchmesh/fetchmesh/testweb/decodo"
	"google.golang.org/protobuf/types/known/durationpb"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	web    *httptest.Server
	truth  *testweb.Web
	emu    *decodo.Emulator
	emuSrv *httptest.Server
}

// newEnv serves the test web and the emulator (allowed to fetch from it).
func newEnv(t *testing.T) *env {
	t.Helper()
	w := testweb.New(1)
	web := httptest.NewServer(w)
	t.Cleanup(web.Close)
	emu := decodo.New(decodo.Options{Username: "user", Password: "s3cret", AllowOrigins: []string{web.URL}})
	emuSrv := httptest.NewServer(emu)
	t.Cleanup(emuSrv.Close)
	return &env{web: web, truth: w, emu: emu, emuSrv: emuSrv}
}

func token(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

type opts struct {
	rate        float64
	concurrency int
	dailyCap    int64
	tok         string
}

func (e *env) scraper(t *testing.T, o opts) *scrape.Scraper {
	t.Helper()
	if o.rate == 0 {
		o.rate = 1000
	}
	if o.concurrency == 0 {
		o.concurrency = 10
	}
	if o.tok == "" {
		o.tok = token("user", "s3cret")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return scrape.New(api.New(e.emuSrv.URL, o.tok, 32<<20), scrape.NewLimiter(ctx, o.rate, o.concurrency),
		scrape.NewBreaker(3, time.Minute), scrape.NewBudget(o.dailyCap),
		scrape.Config{Retries: 2, BackoffBase: 20 * time.Millisecond}, quiet)
}

func (e *env) req(path string) *decodoproxyv1.ScrapeRequest {
	return &decodoproxyv1.ScrapeRequest{Url: e.web.URL + path, Render: true, BatchId: "b1", Timeout: durationpb.New(20 * time.Second)}
}

func TestScrape_ChallengePageComesBackThroughDecodo(t *testing.T) {
	e := newEnv(t)
	resp := e.scraper(t, opts{}).Scrape(context.Background(), e.req("/challenge/403/7"))
	truth, _ := e.truth.Truth(e.web.URL + "/challenge/403/7")
	if resp.GetVerdict() != commonv1.Verdict_VERDICT_COMPLETE || !truth.Check(resp.GetPage().GetTitle(), resp.GetPage().GetText()) {
		t.Fatalf("verdict %v error %v title %q", resp.GetVerdict(), resp.GetError(), resp.GetPage().GetTitle())
	}
	if len(resp.GetTaskId()) != 19 || resp.GetCalls() != 1 || resp.GetBilledCalls() != 1 || resp.GetPage().GetStatusCode() != 200 {
		t.Errorf("task id %q, calls %d, billed %d, status %d", resp.GetTaskId(), resp.GetCalls(), resp.GetBilledCalls(), resp.GetPage().GetStatusCode())
	}
}

func TestScrape_BadCredentialsOneCallNoRetry(t *testing.T) {
	e := newEnv(t)
	s := e.scraper(t, opts{tok: token("user", "wrong")})
	resp := s.Scrape(context.Background(), e.req("/article/1"))
	if resp.GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_CREDENTIALS_REJECTED || resp.GetCalls() != 1 {
		t.Fatalf("got %v after %d calls", resp.GetError(), resp.GetCalls())
	}
	// Later calls are not sent at all.
	again := s.Scrape(context.Background(), e.req("/article/2"))
	if again.GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_CREDENTIALS_REJECTED || again.GetCalls() != 0 || e.emu.Stats().Requests != 1 {
		t.Errorf("second call: %v, %d calls, emulator saw %d", again.GetError(), again.GetCalls(), e.emu.Stats().Requests)
	}
	if strings.Contains(resp.GetError().GetMessage(), token("user", "wrong")) {
		t.Error("the token leaked into the error")
	}
}

func TestScrape_RateLimitedHonoursRetryAfter(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	resp := e.scraper(t, opts{}).Scrape(context.Background(), e.req("/article/3?emu=429x1"))
	if resp.GetVerdict() != commonv1.Verdict_VERDICT_COMPLETE || resp.GetCalls() != 2 {
		t.Fatalf("got %v %v after %d calls", resp.GetVerdict(), resp.GetError(), resp.GetCalls())
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("retried after %s: Retry-After: 1 was not honoured", d)
	}
}

func TestScrape_ServerErrorThenSuccess(t *testing.T) {
	e := newEnv(t)
	resp := e.scraper(t, opts{}).Scrape(context.Background(), e.req("/article/4?emu=503x2"))
	if resp.GetVerdict() != commonv1.Verdict_VERDICT_COMPLETE || resp.GetCalls() != 3 || resp.GetBilledCalls() != 1 {
		t.Errorf("got %v after %d calls (%d billed)", resp.GetError(), resp.GetCalls(), resp.GetBilledCalls())
	}
}

func TestScrape_RepeatedServerErrorsAreBoundedAndOpenTheBreaker(t *testing.T) {
	e := newEnv(t)
	s := e.scraper(t, opts{})
	resp := s.Scrape(context.Background(), e.req("/article/5?emu=500x100"))
	if resp.GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_UPSTREAM || resp.GetCalls() != 3 {
		t.Fatalf("got %v after %d calls, want UPSTREAM after 3", resp.GetError(), resp.GetCalls())
	}
	// Three failures open the breaker (threshold 3): the next call is not sent.
	before := e.emu.Stats().Requests
	next := s.Scrape(context.Background(), e.req("/article/6"))
	if next.GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_CIRCUIT_OPEN || e.emu.Stats().Requests != before {
		t.Errorf("after repeated failures: %v, emulator requests %d -> %d", next.GetError(), before, e.emu.Stats().Requests)
	}
	if !s.Usage().GetCircuitOpen() {
		t.Error("usage does not show the open breaker")
	}
}

func TestScrape_FailedEnvelopeIsNotRetried(t *testing.T) {
	e := newEnv(t)
	resp := e.scraper(t, opts{}).Scrape(context.Background(), e.req("/article/7?emu=failed"))
	if resp.GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_UPSTREAM || resp.GetCalls() != 1 || !strings.Contains(resp.GetError().GetMessage(), "not able to scrape") {
		t.Errorf("got %v after %d calls", resp.GetError(), resp.GetCalls())
	}
}

func TestScrape_SlowAnswerPastTheDeadline(t *testing.T) {
	e := newEnv(t)
	r := e.req("/article/8?emu=slow10s")
	r.Timeout = durationpb.New(time.Second)
	start := time.Now()
	resp := e.scraper(t, opts{}).Scrape(context.Background(), r)
	if resp.GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_TIMEOUT || time.Since(start) > 3*time.Second {
		t.Errorf("got %v after %s", resp.GetError(), time.Since(start))
	}
}

func TestScrape_RejectedFieldsAndOverlongURL(t *testing.T) {
	e := newEnv(t)
	s := e.scraper(t, opts{})
	resp := s.Scrape(context.Background(), e.req("/article/9?emu=400"))
	if resp.GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_UPSTREAM || resp.GetCalls() != 1 || !strings.Contains(resp.GetError().GetMessage(), "refused the request") {
		t.Errorf("400: %v after %d calls", resp.GetError(), resp.GetCalls())
	}
	long := e.req("/article/1?pad=" + strings.Repeat("x", 2100))
	if resp := s.Scrape(context.Background(), long); resp.GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_INVALID_URL || resp.GetCalls() != 0 {
		t.Errorf("overlong URL: %v after %d calls", resp.GetError(), resp.GetCalls())
	}
	// The emulator validates the fields as the API does.
	body := `{"target":"universal","url":"` + e.web.URL + `/article/1","device_type":"toaster"}`
	hr, _ := http.NewRequest(http.MethodPost, e.emuSrv.URL+"/v2/scrape", strings.NewReader(body))
	hr.Header.Set("Authorization", "Basic "+token("user", "s3cret"))
	hresp, err := http.DefaultClient.Do(hr)
	if err != nil || hresp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("invalid device_type: %v %v", hresp, err)
	}
}

func TestScrape_AccountLimitHoldsAcrossBatches(t *testing.T) {
	e := newEnv(t)
	s := e.scraper(t, opts{concurrency: 3, rate: 1000})
	var wg sync.WaitGroup
	for b := range 4 {
		for i := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.req(fmt.Sprintf("/article/%d?emu=slow200ms", b*10+i))
				r.BatchId = fmt.Sprintf("batch-%d", b)
				if resp := s.Scrape(context.Background(), r); resp.GetError() != nil {
					t.Errorf("%v", resp.GetError())
				}
			}()
		}
	}
	wg.Wait()
	if peak := e.emu.Stats().MaxConcurrent; peak > 3 || peak < 2 {
		t.Errorf("the emulator saw %d calls at once; the account limit is 3", peak)
	}
}

func TestScrape_DailyCapAndNotConfigured(t *testing.T) {
	e := newEnv(t)
	s := e.scraper(t, opts{dailyCap: 2})
	for i := range 2 {
		if resp := s.Scrape(context.Background(), e.req(fmt.Sprintf("/article/%d", i))); resp.GetError() != nil {
			t.Fatal(resp.GetError())
		}
	}
	if resp := s.Scrape(context.Background(), e.req("/article/3")); resp.GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_BUDGET_EXHAUSTED {
		t.Errorf("past the daily cap: %v", resp.GetError())
	}
	if u := s.Usage(); u.GetCallsToday() != 2 || u.GetDailyCap() != 2 {
		t.Errorf("usage %v", u)
	}
	unconfigured := scrape.New(nil, nil, scrape.NewBreaker(3, time.Minute), scrape.NewBudget(0), scrape.Config{}, quiet)
	if resp := unconfigured.Scrape(context.Background(), e.req("/article/1")); resp.GetError().GetKind() != commonv1.ErrorKind_ERROR_KIND_NOT_CONFIGURED {
		t.Errorf("without credentials: %v", resp.GetError())
	}
}

func TestEmulator_AsyncTasks(t *testing.T) {
	e := newEnv(t)
	post := func(path, body string) *http.Response {
		hr, _ := http.NewRequest(http.MethodPost, e.emuSrv.URL+path, strings.NewReader(body))
		hr.Header.Set("Authorization", "Basic "+token("user", "s3cret"))
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post("/v3/task/batch", `{"target":"universal","url":["`+e.web.URL+`/article/1","`+e.web.URL+`/article/2"]}`)
	raw, _ := io.ReadAll(resp.Body)
	// The batch id is a bare 19-digit JSON number.
	if resp.StatusCode != 200 || !regexp.MustCompile(`^\{"id":\d{19},`).Match(raw) {
		t.Fatalf("batch: %d %s", resp.StatusCode, raw)
	}
	resp = post("/v3/task", `{"target":"universal","url":"`+e.web.URL+`/article/3"}`)
	var task struct{ ID, Status string }
	decodeJSON(t, resp, &task)
	if len(task.ID) != 19 || task.Status != "pending" && task.Status != "done" {
		t.Fatalf("task %+v", task)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		hr, _ := http.NewRequest(http.MethodGet, e.emuSrv.URL+"/v3/task/"+task.ID+"/results", nil)
		hr.Header.Set("Authorization", "Basic "+token("user", "s3cret"))
		r, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode == http.StatusOK {
			var out struct{ Results []struct{ Content string } }
			decodeJSON(t, r, &out)
			if len(out.Results) != 1 || !strings.Contains(out.Results[0].Content, "fingerprint") {
				t.Errorf("results %+v", out)
			}
			return
		}
		r.Body.Close()
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("the task never finished")
}

func decodeJSON(t *testing.T, r *http.Response, v any) {
	t.Helper()
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
