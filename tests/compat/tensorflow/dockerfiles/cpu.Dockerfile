# TensorFlow's pattern: the Ubuntu release is an ARG with a default, named in the FROM of a stage called base.
ARG UBUNTU_VERSION=22.04

FROM ubuntu:${UBUNTU_VERSION} AS base

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends curl python3-pip && rm -rf /var/lib/apt/lists/*

ARG TF_PACKAGE=tensorflow-cpu
ARG TF_PACKAGE_VERSION=
RUN python3 -m pip install --no-cache-dir ${TF_PACKAGE}${TF_PACKAGE_VERSION:+==${TF_PACKAGE_VERSION}}

COPY bashrc /etc/bash.bashrc
