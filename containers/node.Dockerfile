# Stand-in for node:<version>-bookworm-slim, built by containers/base-images.sh:
# a minimal Debian bookworm with this machine's Node.js binary and npm.
ARG BASE
FROM ${BASE}
ARG NODE_VERSION
COPY bin/node /usr/local/bin/node
COPY lib/node_modules/npm /usr/local/lib/node_modules/npm
# Node.js ships its own CA list; make it trust the image's bundle as well.
ENV NODE_VERSION=${NODE_VERSION} NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version
CMD ["node"]
