# The GPU image: CUDA's tag is made of three ARGs, one of them only when set (${ARCH:+-$ARCH}).
ARG UBUNTU_VERSION=22.04
ARG ARCH=
ARG CUDA=12.2.0
FROM nvidia/cuda${ARCH:+-$ARCH}:${CUDA}-base-ubuntu${UBUNTU_VERSION} AS base
# ARCH and CUDA are specified again because the FROM directive resets ARGs
ARG ARCH
ARG CUDA

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip && rm -rf /var/lib/apt/lists/*

ARG TF_PACKAGE=tensorflow
ARG TF_PACKAGE_VERSION=
RUN python3 -m pip install --no-cache-dir ${TF_PACKAGE}${TF_PACKAGE_VERSION:+==${TF_PACKAGE_VERSION}}

COPY bashrc /etc/bash.bashrc
