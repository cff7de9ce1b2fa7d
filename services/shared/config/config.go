// Package config loads a service's typed configuration from command-line
// flags and FETCHMESH_* environment variables, in one place per service.
//
// A service declares a struct whose fields carry `flag`, `default` and
// `help` tags; Load registers one flag per field and maps each flag to the
// environment variable FETCHMESH_<FLAG> (dashes become underscores). A flag
// given on the command line wins over the environment, which wins over the
// default. Supported field types: string, bool, int, int64, float64,
// time.Duration and []string (comma-separated).
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Validator is implemented by configs that check themselves after loading.
type Validator interface {
	Validate() error
}

// EnvName is the environment variable that sets the flag called name.
func EnvName(name string) string {
	return "FETCHMESH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Load fills cfg (a pointer to a struct) from args and the environment, then
// calls cfg.Validate if it has one. Errors name the flag and its variable.
func Load(cfg any, program string, args []string) error {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return errors.New("config: Load needs a pointer to a struct")
	}
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fields := map[string]reflect.Value{}
	if err := register(fs, v.Elem(), fields); err != nil {
		return err
	}
	for name, fv := range fields {
		if s, ok := os.LookupEnv(EnvName(name)); ok {
			if err := set(fv, s); err != nil {
				return fmt.Errorf("config: %s=%q: %w", EnvName(name), s, err)
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("config: unexpected arguments %q", fs.Args())
	}
	if val, ok := cfg.(Validator); ok {
		if err := val.Validate(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}

// register adds a flag for each tagged field of the struct v, descending
// into embedded structs (so a command can extend another's config).
func register(fs *flag.FlagSet, v reflect.Value, fields map[string]reflect.Value) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if err := register(fs, v.Field(i), fields); err != nil {
				return err
			}
			continue
		}
		name := f.Tag.Get("flag")
		if name == "" {
			continue
		}
		fv := v.Field(i)
		fields[name] = fv
		if err := set(fv, f.Tag.Get("default")); err != nil {
			return fmt.Errorf("config: default of -%s: %w", name, err)
		}
		fs.Var(fieldValue{fv}, name, fmt.Sprintf("%s (env %s)", f.Tag.Get("help"), EnvName(name)))
	}
	return nil
}

// fieldValue adapts a struct field to flag.Value.
type fieldValue struct{ v reflect.Value }

func (f fieldValue) String() string {
	if !f.v.IsValid() {
		return ""
	}
	if s, ok := f.v.Interface().([]string); ok {
		return strings.Join(s, ",")
	}
	return fmt.Sprint(f.v.Interface())
}

func (f fieldValue) Set(s string) error { return set(f.v, s) }

// IsBoolFlag lets boolean flags be given without a value.
func (f fieldValue) IsBoolFlag() bool { return f.v.Kind() == reflect.Bool }

func set(v reflect.Value, s string) error {
	switch v.Interface().(type) {
	case time.Duration:
		if s == "" {
			v.SetInt(0)
			return nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	case []string:
		var out []string
		for part := range strings.SplitSeq(s, ",") {
			if p := strings.TrimSpace(part); p != "" {
				out = append(out, p)
			}
		}
		v.Set(reflect.ValueOf(out))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		if s == "" {
			v.SetBool(false)
			return nil
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		if s == "" {
			v.SetInt(0)
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Float64:
		if s == "" {
			v.SetFloat(0)
			return nil
		}
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		v.SetFloat(n)
	default:
		return fmt.Errorf("unsupported field type %s", v.Type())
	}
	return nil
}
