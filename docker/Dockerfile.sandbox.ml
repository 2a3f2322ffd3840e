# syntax=docker/dockerfile:1
# paracle sandbox, data-science variant: the sandbox plus the numeric stack.
# Everything comes from wheels, so no compiler or OS package is added.
ARG SANDBOX_IMAGE=paracle/sandbox:0.1.0
FROM ${SANDBOX_IMAGE}

# Installed as root into the system site-packages: /workspace is replaced by a
# tmpfs or the host folder at run time, so nothing may live there.
USER root
RUN pip install --no-cache-dir \
        numpy==2.1.2 \
        pandas==2.2.3 \
        scikit-learn==1.5.2 \
        matplotlib==3.9.2

USER 1000:1000
