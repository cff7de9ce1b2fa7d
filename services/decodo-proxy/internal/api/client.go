// Package api is a client of the Decodo Web Scraping API's synchronous
// scrape endpoint: one HTTP call per Call, its answer typed. Retries,
// limits and budgets are package scrape's.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request is the JSON body of a scrape call.
type Request struct {
	Target       string            `json:"target"`
	URL          string            `json:"url"`
	Headless     string            `json:"headless,omitempty"`
	Geo          string            `json:"geo,omitempty"`
	Locale       string            `json:"locale,omitempty"`
	DeviceType   string            `json:"device_type,omitempty"`
	SessionID    string            `json:"session_id,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	ForceHeaders bool              `json:"force_headers,omitempty"`
}

// Result is one scraped page.
type Result struct {
	Content    string
	StatusCode int
	URL        string
	TaskID     string
	Headers    map[string]string
}

// Kind is how a call ended.
type Kind int

// Kinds of answers.
const (
	OK           Kind = iota // results
	Failed                   // 200 with the "failed" envelope: Decodo gave up
	BadRequest               // 400, 422: the request was refused
	AuthFailed               // 401, 403
	NotFound                 // 404
	RateLimited              // 429
	ServerError              // 5xx, 524
	NetworkError             // no answer
)

// Answer is one call's outcome.
type Answer struct {
	Kind       Kind
	Status     int
	Result     *Result
	Message    string        // for errors, from the body (never the credentials)
	RetryAfter time.Duration // for 429 and 503 when given
	Billed     bool          // 2xx and 4xx answers are billed
}

// Client calls the API.
type Client struct {
	base  string
	auth  string
	http  *http.Client
	limit int64
}

// New returns a client for the API at base (e.g. https://scraper-api.decodo.com)
// using the Basic token (base64 of user:pass).
func New(base, token string, maxBody int64) *Client {
	return &Client{base: strings.TrimSuffix(base, "/"), auth: "Basic " + token, http: &http.Client{}, limit: maxBody}
}

// Call sends one scrape request.
func (c *Client) Call(ctx context.Context, req Request) Answer {
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v2/scrape", bytes.NewReader(body))
	if err != nil {
		return Answer{Kind: NetworkError, Message: "bad API address"}
	}
	hr.Header.Set("Authorization", c.auth)
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return Answer{Kind: NetworkError, Message: ctx.Err().Error()}
		}
		return Answer{Kind: NetworkError, Message: "the Decodo API could not be reached"}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.limit+1<<20))
	a := Answer{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	a.Billed = resp.StatusCode < 500
	if err != nil {
		a.Kind, a.Message = NetworkError, "the answer was cut short"
		return a
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return parseOK(a, raw)
	case resp.StatusCode == 400 || resp.StatusCode == 422:
		a.Kind, a.Message = BadRequest, errorsOf(raw)
	case resp.StatusCode == 401 || resp.StatusCode == 403:
		a.Kind, a.Message = AuthFailed, "Decodo credentials rejected"
	case resp.StatusCode == 404:
		a.Kind, a.Message = NotFound, "Decodo: target not found"
	case resp.StatusCode == 429:
		a.Kind, a.Message = RateLimited, "Decodo rate limit exceeded"
	case resp.StatusCode >= 500:
		a.Kind, a.Message = ServerError, fmt.Sprintf("Decodo answered %d", resp.StatusCode)
	default:
		a.Kind, a.Message = BadRequest, fmt.Sprintf("Decodo answered %d", resp.StatusCode)
	}
	return a
}

func parseOK(a Answer, raw []byte) Answer {
	var env struct {
		Status     string `json:"status"`
		StatusCode int    `json:"status_code"`
		Message    string `json:"message"`
		Results    []struct {
			Content    string            `json:"content"`
			StatusCode int               `json:"status_code"`
			URL        string            `json:"url"`
			TaskID     json.Number       `json:"task_id"` // a string in answers, read as a number too
			Headers    map[string]string `json:"headers"`
		} `json:"results"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		a.Kind, a.Message = ServerError, "Decodo sent an answer that is not JSON"
		return a
	}
	if env.Status == "failed" || len(env.Results) == 0 {
		a.Kind, a.Message = Failed, "Decodo could not scrape the target"
		if env.Message != "" {
			a.Message = "Decodo: " + env.Message
		}
		return a
	}
	r := env.Results[0]
	a.Kind = OK
	a.Result = &Result{Content: r.Content, StatusCode: r.StatusCode, URL: r.URL, TaskID: r.TaskID.String(), Headers: r.Headers}
	return a
}

func errorsOf(raw []byte) string {
	var e struct {
		Errors []any `json:"errors"`
	}
	if json.Unmarshal(raw, &e) == nil && len(e.Errors) > 0 {
		parts := make([]string, 0, len(e.Errors))
		for _, x := range e.Errors {
			parts = append(parts, fmt.Sprint(x))
		}
		return "Decodo refused the request: " + strings.Join(parts, "; ")
	}
	return "Decodo refused the request"
}

// retryAfter reads seconds or an HTTP date; 0 when absent or unreadable.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// MaxURLLength is the longest URL the API takes.
const MaxURLLength = 2056
