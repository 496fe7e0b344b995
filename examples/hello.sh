#!/bin/sh
# A tiny app for trying zpm: prints a greeting every second.
# zpm start examples/hello.sh && zpm ls && zpm describe hello && zpm kill
n=0
while true; do
  n=$((n + 1))
  echo "hello from zpm app $ZPM_NAME (id $ZPM_ID), tick $n"
  sleep 1
done
