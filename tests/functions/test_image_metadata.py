"""What describe and scan report of an image: environment values and build arguments masked."""

from __future__ import annotations

import pytest

from shared.image_metadata import image_config, mask_build_step


@pytest.mark.parametrize(
    ("step", "masked"),
    [
        ("/bin/sh -c #(nop)  ENV PATH=/usr/local/bin:/usr/bin", "/bin/sh -c #(nop)  ENV PATH=***"),
        ('ENV A=1 B="two words" C=3', "ENV A=*** B=*** C=***"),
        ("/bin/sh -c #(nop) ENV GPG_KEY 0123 4567", "/bin/sh -c #(nop) ENV GPG_KEY ***"),
        ("ARG TOKEN=secret", "ARG TOKEN=***"),
        ("ARG VERSION", "ARG VERSION"),
        ("RUN |2 TOKEN=abc def OTHER=x /bin/sh -c make", "RUN |2 TOKEN=*** OTHER=*** /bin/sh -c make"),
        ("|1 TOKEN=abc /bin/sh -c make", "|1 TOKEN=*** /bin/sh -c make"),
        ("RUN /bin/sh -c apt-get install -y curl", "RUN /bin/sh -c apt-get install -y curl"),
        ('CMD ["nginx", "-g", "daemon off;"]', 'CMD ["nginx", "-g", "daemon off;"]'),
    ],
)
def test_mask_build_step(step: str, masked: str) -> None:
    assert mask_build_step(step) == masked


def test_image_config_tolerates_sparse_configs() -> None:
    config = image_config({"config": {"Env": None, "Cmd": "nginx", "Labels": None}, "history": [None, {}]})
    assert (config.env_names, config.cmd, config.labels, config.entrypoint) == ([], ["nginx"], {}, None)
    assert len(config.history) == 1
