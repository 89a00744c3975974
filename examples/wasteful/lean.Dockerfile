# The same 5 MB written and deleted in one RUN: the layer never holds it.
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /tmp \
 && dd if=/dev/urandom of=/tmp/download.bin bs=1000 count=5000 \
 && rm /tmp/download.bin
