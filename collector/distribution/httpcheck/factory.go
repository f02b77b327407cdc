// Package httpcheckreceiver is beacon-otel's own httpcheck receiver: it requests HTTP endpoints
// on an interval and reports their status class, duration and errors as metrics. It accepts the
// configuration keys of the contrib receiver of the same type and emits the same metric names,
// units and attributes, so a collector config using it runs on either distribution.
package httpcheckreceiver

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
)

// scopeName is the instrumentation scope of the emitted metrics.
const scopeName = "beacon-otel/httpcheckreceiver"

var componentType = component.MustNewType("httpcheck")

// NewFactory returns the factory of the httpcheck receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		componentType,
		func() component.Config { return createDefaultConfig() },
		receiver.WithMetrics(createMetrics, component.StabilityLevelAlpha),
	)
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("httpcheck: unexpected config type %T", cfg)
	}
	return newReceiver(c, set, next), nil
}
