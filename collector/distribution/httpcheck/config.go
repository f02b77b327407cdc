package httpcheckreceiver

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
)

const (
	defaultCollectionInterval = 60 * time.Second
	defaultInitialDelay       = time.Second
	// defaultRequestTimeout applies to a target whose own timeout is not set (or is 0).
	defaultRequestTimeout = 30 * time.Second
	defaultMethod         = "GET"
)

// Config is the httpcheck receiver's configuration. Its keys are those of the contrib receiver
// of the same name, so one collector config serves both.
type Config struct {
	// CollectionInterval is the time between two rounds of checks.
	CollectionInterval time.Duration `mapstructure:"collection_interval"`
	// InitialDelay is waited once before the first round; zero or less starts at once.
	InitialDelay time.Duration `mapstructure:"initial_delay"`
	// Timeout bounds a whole round of checks; zero means the targets' own timeouts alone apply.
	Timeout time.Duration `mapstructure:"timeout"`
	// Targets are the HTTP endpoints to check.
	Targets []TargetConfig `mapstructure:"targets"`

	_ struct{}
}

// TargetConfig is one entry of targets: a request made to one or more URLs.
type TargetConfig struct {
	// Method is the HTTP method; empty means GET.
	Method string `mapstructure:"method"`
	// Endpoint is a URL to check.
	Endpoint string `mapstructure:"endpoint"`
	// Endpoints are more URLs checked with the same settings.
	Endpoints []string `mapstructure:"endpoints"`
	// Headers are set on every request; a map or a list of name/value pairs.
	Headers configopaque.MapList `mapstructure:"headers"`
	// Body is sent as the request body when not empty.
	Body string `mapstructure:"body"`
	// Timeout bounds one request, reading the response included; zero means 30s.
	Timeout time.Duration `mapstructure:"timeout"`

	_ struct{}
}

func createDefaultConfig() *Config {
	return &Config{
		CollectionInterval: defaultCollectionInterval,
		InitialDelay:       defaultInitialDelay,
	}
}

// Validate reports every problem of the configuration at once, each naming its field.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.CollectionInterval <= 0 {
		errs = append(errs, fmt.Errorf("collection_interval must be positive, got %s", cfg.CollectionInterval))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must not be negative, got %s", cfg.Timeout))
	}
	if len(cfg.Targets) == 0 {
		errs = append(errs, errors.New("targets must list at least one target"))
	}
	for i, target := range cfg.Targets {
		for _, err := range target.problems() {
			errs = append(errs, fmt.Errorf("targets[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func (t *TargetConfig) problems() []error {
	var errs []error
	if t.Method != "" && !isToken(t.Method) {
		errs = append(errs, fmt.Errorf("method %q is not a valid HTTP method", t.Method))
	}
	if t.Endpoint == "" && len(t.Endpoints) == 0 {
		errs = append(errs, errors.New("endpoint must not be empty (set endpoint or endpoints)"))
	}
	if t.Endpoint != "" {
		if err := checkURL(t.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("endpoint %w", err))
		}
	}
	for j, endpoint := range t.Endpoints {
		if err := checkURL(endpoint); err != nil {
			errs = append(errs, fmt.Errorf("endpoints[%d] %w", j, err))
		}
	}
	if t.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must not be negative, got %s", t.Timeout))
	}
	return errs
}

// checkURL accepts absolute http and https URLs with a host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a valid URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must start with http:// or https://", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	return nil
}

// isToken tells whether s is an RFC 9110 token, the syntax of an HTTP method.
func isToken(s string) bool {
	const punctuation = "!#$%&'*+-.^_`|~"
	for _, r := range s {
		alnum := r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		if !alnum && !strings.ContainsRune(punctuation, r) {
			return false
		}
	}
	return s != ""
}

// check is one URL to request, with its target's settings resolved.
type check struct {
	method  string
	url     string
	headers configopaque.MapList
	body    string
	timeout time.Duration
}

// checks expands the targets into one check per URL, in configuration order.
func (cfg *Config) checks() []check {
	var out []check
	for _, t := range cfg.Targets {
		method := t.Method
		if method == "" {
			method = defaultMethod
		}
		timeout := t.Timeout
		if timeout == 0 {
			timeout = defaultRequestTimeout
		}
		urls := t.Endpoints
		if t.Endpoint != "" {
			urls = append([]string{t.Endpoint}, urls...)
		}
		for _, u := range urls {
			out = append(out, check{method: method, url: u, headers: t.Headers, body: t.Body, timeout: timeout})
		}
	}
	return out
}
