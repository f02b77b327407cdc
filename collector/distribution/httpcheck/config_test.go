package httpcheckreceiver

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
)

// load unmarshals a receiver config the way the collector does, then validates it the way
// `otelcol validate` does.
func load(t *testing.T, raw map[string]any) (*Config, error) {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := confmap.NewFromStringMap(raw).Unmarshal(cfg); err != nil {
		return nil, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestConfigStruct(t *testing.T) {
	if err := componenttest.CheckConfigStruct(createDefaultConfig()); err != nil {
		t.Fatal(err)
	}
}

func TestDefaults(t *testing.T) {
	cfg := createDefaultConfig()
	if cfg.CollectionInterval != 60*time.Second || cfg.InitialDelay != time.Second || cfg.Timeout != 0 {
		t.Errorf("defaults: %+v", cfg)
	}
}

// TestBeaconConfig is the receiver block of collector/otelcol.yaml, env references resolved.
func TestBeaconConfig(t *testing.T) {
	cfg, err := load(t, map[string]any{
		"collection_interval": "30s",
		"targets": []any{
			map[string]any{"method": "GET", "endpoint": "http://router:8080/health"},
			map[string]any{"method": "GET", "endpoint": "http://router:8080/ready"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CollectionInterval != 30*time.Second {
		t.Errorf("collection_interval = %s", cfg.CollectionInterval)
	}
	checks := cfg.checks()
	if len(checks) != 2 || checks[0].url != "http://router:8080/health" || checks[1].url != "http://router:8080/ready" {
		t.Fatalf("checks = %+v", checks)
	}
	if checks[0].method != "GET" || checks[0].timeout != defaultRequestTimeout {
		t.Errorf("check = %+v", checks[0])
	}
}

func TestAllKeys(t *testing.T) {
	cfg, err := load(t, map[string]any{
		"collection_interval": "5s",
		"initial_delay":       "0s",
		"timeout":             "4s",
		"targets": []any{
			map[string]any{
				"endpoint":  "https://a.example/health",
				"endpoints": []any{"http://b.example:81/x", "http://c.example"},
				"headers":   map[string]any{"X-Token": "secret"},
				"timeout":   "2s",
			},
			map[string]any{
				"method":   "POST",
				"endpoint": "http://d.example",
				"headers":  []any{map[string]any{"name": "Content-Type", "value": "application/json"}},
				"body":     `{"a":1}`,
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := cfg.checks()
	if len(checks) != 4 {
		t.Fatalf("got %d checks, want 4", len(checks))
	}
	urls := []string{checks[0].url, checks[1].url, checks[2].url, checks[3].url}
	if strings.Join(urls, " ") != "https://a.example/health http://b.example:81/x http://c.example http://d.example" {
		t.Errorf("urls = %v", urls)
	}
	if v, _ := checks[1].headers.Get("X-Token"); string(v) != "secret" || checks[1].timeout != 2*time.Second || checks[1].method != "GET" {
		t.Errorf("check 1 = %+v", checks[1])
	}
	if v, _ := checks[3].headers.Get("Content-Type"); string(v) != "application/json" || checks[3].body != `{"a":1}` || checks[3].method != "POST" {
		t.Errorf("check 3 = %+v", checks[3])
	}
	if cfg.Timeout != 4*time.Second || cfg.InitialDelay != 0 {
		t.Errorf("cfg = %+v", cfg)
	}
}

func TestInvalidConfigs(t *testing.T) {
	ok := map[string]any{"endpoint": "http://router:8080/health"}
	for name, tc := range map[string]struct {
		raw  map[string]any
		want []string
	}{
		"no targets": {
			raw:  map[string]any{},
			want: []string{"targets must list at least one target"},
		},
		"empty endpoint": {
			raw:  map[string]any{"targets": []any{ok, map[string]any{"method": "GET", "endpoint": ""}}},
			want: []string{"targets[1]: endpoint must not be empty"},
		},
		"bad urls": {
			raw: map[string]any{"targets": []any{
				map[string]any{"endpoint": "router:8080/health"},
				map[string]any{"endpoint": "http://", "endpoints": []any{"ftp://x", "http://%zz"}},
			}},
			want: []string{
				`targets[0]: endpoint "router:8080/health" must start with http:// or https://`,
				`targets[1]: endpoint "http://" has no host`,
				`targets[1]: endpoints[0] "ftp://x" must start with http:// or https://`,
				`targets[1]: endpoints[1] "http://%zz" is not a valid URL`,
			},
		},
		"bad method": {
			raw:  map[string]any{"targets": []any{map[string]any{"method": "GE T", "endpoint": "http://x"}}},
			want: []string{`targets[0]: method "GE T" is not a valid HTTP method`},
		},
		"bad durations": {
			raw: map[string]any{
				"collection_interval": "0s",
				"timeout":             "-1s",
				"targets":             []any{map[string]any{"endpoint": "http://x", "timeout": "-2s"}},
			},
			want: []string{
				"collection_interval must be positive",
				"timeout must not be negative, got -1s",
				"targets[0]: timeout must not be negative, got -2s",
			},
		},
		"duplicate headers": {
			raw: map[string]any{"targets": []any{map[string]any{"endpoint": "http://x", "headers": []any{
				map[string]any{"name": "A", "value": "1"},
				map[string]any{"name": "A", "value": "2"},
			}}}},
			want: []string{"duplicate keys"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(t, tc.raw)
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
}

func TestUnknownKeyRejected(t *testing.T) {
	_, err := load(t, map[string]any{"targets": []any{map[string]any{"endpoint": "http://x", "validations": []any{}}}})
	if err == nil || !strings.Contains(err.Error(), "validations") {
		t.Fatalf("err = %v, want one naming the unknown key", err)
	}
}
