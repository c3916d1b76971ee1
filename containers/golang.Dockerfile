# Stand-in for golang:<version>-bookworm, built by containers/base-images.sh:
# a minimal Debian bookworm with gcc, git and the official Go toolchain.
ARG BASE
FROM ${BASE}
ARG GOLANG_VERSION
COPY . /usr/local/go/
ENV GOLANG_VERSION=${GOLANG_VERSION} GOTOOLCHAIN=local GOPATH=/go \
    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go && go version
WORKDIR /go
