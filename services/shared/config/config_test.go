package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fetchmesh/fetchmesh/services/shared/config"
)

type sample struct {
	Listen  string        `flag:"listen" default:"127.0.0.1:1" help:"address"`
	Allow   []string      `flag:"ssrf-allow" help:"allowed"`
	Timeout time.Duration `flag:"timeout" default:"5s" help:"timeout"`
	Slots   int           `flag:"slots" default:"20" help:"slots"`
	Drain   bool          `flag:"drain" help:"drain"`
}

func (s *sample) Validate() error {
	if s.Slots < 1 {
		return errors.New("-slots must be at least 1")
	}
	return nil
}

func TestLoad_DefaultsEnvThenFlags(t *testing.T) {
	t.Setenv("FETCHMESH_SSRF_ALLOW", "127.0.0.1:8089, 10.0.0.0/8")
	t.Setenv("FETCHMESH_SLOTS", "7")
	var s sample
	if err := config.Load(&s, "x", []string{"-slots", "9", "-drain"}); err != nil {
		t.Fatal(err)
	}
	if s.Listen != "127.0.0.1:1" || s.Timeout != 5*time.Second || s.Slots != 9 || !s.Drain || strings.Join(s.Allow, "|") != "127.0.0.1:8089|10.0.0.0/8" {
		t.Errorf("got %+v", s)
	}
}

func TestLoad_ClearErrors(t *testing.T) {
	t.Setenv("FETCHMESH_TIMEOUT", "soon")
	var s sample
	if err := config.Load(&s, "x", nil); err == nil || !strings.Contains(err.Error(), "FETCHMESH_TIMEOUT") {
		t.Errorf("bad env: %v", err)
	}
	t.Setenv("FETCHMESH_TIMEOUT", "")
	if err := config.Load(&s, "x", []string{"-slots", "0"}); err == nil || !strings.Contains(err.Error(), "-slots") {
		t.Errorf("validation: %v", err)
	}
	if err := config.Load(&s, "x", []string{"stray"}); err == nil {
		t.Error("stray argument accepted")
	}
}

type extended struct {
	sample
	Delay time.Duration `flag:"delay" default:"3s" help:"delay"`
}

func TestLoad_EmbeddedStructsAddTheirFlags(t *testing.T) {
	var e extended
	if err := config.Load(&e, "x", []string{"-slots", "4", "-delay", "1s"}); err != nil {
		t.Fatal(err)
	}
	if e.Slots != 4 || e.Delay != time.Second || e.Listen != "127.0.0.1:1" {
		t.Errorf("got %+v", e)
	}
}
