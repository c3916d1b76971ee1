// Package deploycheck checks the deployment files (Dockerfiles, compose,
// Kustomize, Skaffold) statically: they must be right without a cluster.
package deploycheck
