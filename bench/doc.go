// Package bench is the benchmark harness behind `make bench`.
package bench
