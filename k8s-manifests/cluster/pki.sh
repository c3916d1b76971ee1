# pki.sh: the cluster's credentials, made fresh at every cluster-up:
# - one CA; the API server's serving certificate (valid for the bridge
#   address, the `kubernetes` Service IP and its DNS names, 127.0.0.1) and its
#   client certificate towards the kubelet;
# - the service-account signing key;
# - a bearer token per component, whose user and groups are those the
#   default RBAC policy already binds (system:kube-scheduler, system:node:*,
#   ...), and a kubeconfig for each.
# Sourced by up.sh.
# shellcheck shell=bash

# make_cert NAME SUBJECT [SAN]: a key and a certificate signed by the CA.
make_cert() {
  local name=$1 subject=$2 san=${3:-}
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n $san ]]; then
      echo "extendedKeyUsage=serverAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 7 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

# write_kubeconfig FILE USER TOKEN
write_kubeconfig() {
  local file=$1 user=$2 token=$3
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: titanium
    cluster:
      server: https://$GATEWAY:$APISERVER_PORT
      certificate-authority: $PKI/ca.crt
users:
  - name: $user
    user:
      token: $token
contexts:
  - name: titanium
    context: {cluster: titanium, user: $user}
current-context: titanium
EOF
  chmod 600 "$file"
}

# add_identity NAME USER GROUPS: a token for USER in GROUPS, and the
# kubeconfig $PKI/NAME.kubeconfig that presents it.
add_identity() {
  local name=$1 user=$2 groups=$3 token
  token=$(openssl rand -hex 24)
  echo "$token,$user,$user,\"$groups\"" >>"$PKI/tokens.csv"
  write_kubeconfig "$PKI/$name.kubeconfig" "$user" "$token"
}

make_pki() {
  rm -rf "$PKI"
  mkdir -p "$PKI" "$STATE"
  chmod 700 "$PKI"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
    -days 7 -subj "/CN=titanium-cluster-ca" 2>/dev/null
  make_cert apiserver "/CN=kube-apiserver" \
    "IP:$GATEWAY,IP:$KUBERNETES_SVC_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  make_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null

  : >"$PKI/tokens.csv"
  chmod 600 "$PKI/tokens.csv"
  # The users the default RBAC policy binds; admin is for users and tests.
  add_identity admin titanium-admin system:masters
  add_identity kubelet "system:node:$NODE_NAME" system:nodes
  add_identity controller-manager system:kube-controller-manager ""
  add_identity scheduler system:kube-scheduler ""
  add_identity proxy system:kube-proxy ""
  cp "$PKI/admin.kubeconfig" "$KUBECONFIG_FILE"
}
