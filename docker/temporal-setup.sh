#!/bin/sh
# One-shot (service temporal-setup): once the server answers, the namespace and the migration
# workflows' search attributes, given as arguments NAME=TYPE (the list in docker-compose.yml, kept in
# sync with stack/search-attributes.ts). Idempotent: an existing namespace is kept, and creating an
# attribute that exists with the same type is a no-op.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  echo 'waiting for the Temporal server'
  sleep 2
done
temporal operator namespace describe -n "$ns" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 \
  || temporal operator namespace create -n "$ns" --retention 30d --address "$TEMPORAL_ADDRESS"
for attribute in "$@"; do
  temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$ns" \
    --name "${attribute%%=*}" --type "${attribute#*=}"
done
echo "namespace $ns and $# search attributes registered"
