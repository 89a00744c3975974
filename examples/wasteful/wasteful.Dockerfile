# A 5 MB file written in one RUN and deleted in the next: the delete hides it, but its bytes stay in the image.
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /tmp && dd if=/dev/urandom of=/tmp/download.bin bs=1000 count=5000
RUN rm /tmp/download.bin
