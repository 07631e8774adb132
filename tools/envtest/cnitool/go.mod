// Builds cnitool, the CNI reference runner that the CNI tests use as the container runtime.
module bpfchain.io/tools/envtest/cnitool

go 1.26.0

require (
	github.com/containernetworking/cni v1.3.1 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/cobra v1.9.1 // indirect
	github.com/spf13/pflag v1.0.6 // indirect
	go.opentelemetry.io/otel v1.29.0 // indirect
	go.opentelemetry.io/otel/trace v1.29.0 // indirect
)

tool github.com/containernetworking/cni/cnitool
