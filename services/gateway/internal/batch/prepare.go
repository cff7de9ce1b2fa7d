package batch

import (
	"net/url"
	"strings"

	"github.com/fetchmesh/fetchmesh/services/shared/target"
)

// job is one distinct URL of a batch and every input index that named it.
type job struct {
	url     string // canonical form, fetched
	host    string
	indices []int
	inputs  []string // the URL as given at each index
	// startOnRender: the host is known to need JavaScript (decided once,
	// when the job is dispatched).
	startOnRender bool
}

// invalidURL is an input rejected before any fetch.
type invalidURL struct {
	index  int
	input  string
	reason string
}

// prepare parses every input, rejects the unfetchable ones and folds
// duplicates (same canonical URL) into one job.
func prepare(inputs []string) ([]*job, []invalidURL) {
	var (
		jobs    []*job
		invalid []invalidURL
		byKey   = make(map[string]*job, len(inputs))
	)
	for i, raw := range inputs {
		u, err := target.ParseURL(strings.TrimSpace(raw))
		if err != nil {
			invalid = append(invalid, invalidURL{index: i, input: raw, reason: err.Error()})
			continue
		}
		key := canonical(u)
		j := byKey[key]
		if j == nil {
			j = &job{url: key, host: u.Hostname()}
			byKey[key] = j
			jobs = append(jobs, j)
		}
		j.indices = append(j.indices, i)
		j.inputs = append(j.inputs, raw)
	}
	return jobs, invalid
}

// canonical lowercases scheme and host and drops a default port, so that
// spellings of one URL are fetched once. Path, query and fragment are kept
// as given (a fragment can route a single-page app).
func canonical(u *url.URL) string {
	c := *u
	c.Scheme = strings.ToLower(c.Scheme)
	host := strings.ToLower(c.Hostname())
	port := c.Port()
	if (c.Scheme == "http" && port == "80") || (c.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	c.Host = host
	if c.Path == "" && c.RawPath == "" {
		c.Path = "/"
	}
	return c.String()
}
