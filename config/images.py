"""The component image's reference (--image, --gpu-image) as Docker and containerd parse it, and its checks: no
README placeholder left in it, the reference grammar, and a registry a cluster can pull from."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from types import MappingProxyType

from config.settings import ConfigError

# How to build and push the component image (see Dockerfile) to a registry, which a cluster pulls it from. The
# upper-case words of the image names in it, the README, docs/kubeflow.md and kubeflow_runner.py's usage are
# PLACEHOLDERS, refused in an image; the refusals show IMAGE_EXAMPLE instead, a reference the checks accept (tests
# say so).
IMAGE_FORM = "REGISTRY/imdb-bert-tfx:TAG"
IMAGE_BUILD_HINT = f"make image push IMAGE={IMAGE_FORM}"
IMAGE_EXAMPLE = "us-docker.pkg.dev/my-project/my-repo/imdb-bert-tfx:1.0"
PLACEHOLDERS = ("REGISTRY", "REGION", "PROJECT", "REPOSITORY", "TAG")

# An image reference as Docker and containerd parse one: distribution/reference v0.6.0's grammar, in its
# regexp.go's text (https://github.com/distribution/reference/blob/v0.6.0/regexp.go), matched in ASCII as Go
# does; normalize.go's splitDockerDomain says whether the first component is a registry; the digest, as
# go-digest's algorithm.go validates it (lower-case hex of the algorithm's length).
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_OPTIONAL_PORT = r"(?::[0-9]+)?"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = _DOMAIN_NAME_COMPONENT + r"(?:\." + _DOMAIN_NAME_COMPONENT + ")*"
_HOST = "(?:" + _DOMAIN_NAME + "|" + _IPV6_ADDRESS + ")"
_PATH_COMPONENT = _ALPHANUMERIC + "(?:" + _SEPARATOR + _ALPHANUMERIC + ")*"
DOMAIN_AND_PORT = re.compile(_HOST + _OPTIONAL_PORT, re.ASCII)
REMOTE_NAME = re.compile(_PATH_COMPONENT + "(?:/" + _PATH_COMPONENT + ")*", re.ASCII)
TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
REMOTE_NAME_MAX = 255  # reference.go: RepositoryNameTotalLengthMax
DIGEST_HEX_LENGTHS: Mapping[str, int] = MappingProxyType({"sha256": 64, "sha384": 96, "sha512": 128})
LOWER_HEX = re.compile("[a-f0-9]+")


@dataclasses.dataclass(frozen=True)
class ImageReference:
    """[registry/]path[:tag][@digest]; `registry` "" for Docker Hub, `tag` and `digest` "" when absent."""

    registry: str
    path: str
    tag: str
    digest: str

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.path}" if self.registry else self.path


def image_reference(image: str) -> ImageReference:
    """`image` parsed as distribution/reference's ParseNormalizedNamed parses it; ValueError saying which part
    breaks the grammar."""
    rest, at, digest = image.partition("@")
    name, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:  # a colon before a slash is a registry's port
        name, colon, tag = rest, "", ""
    first, slash, remainder = name.partition("/")
    is_registry = bool(slash) and (first == "localhost" or any(c in first for c in ".:") or first != first.lower())
    registry, path = (first, remainder) if is_registry else ("", name)
    algorithm, _, encoded = digest.partition(":")
    if is_registry and not DOMAIN_AND_PORT.fullmatch(registry):
        raise ValueError(f"the registry {registry!r} is not a host name, IPv4 or [IPv6] address, and optional :port")
    if path != path.lower():
        raise ValueError(f"the repository path {path!r} must be lower case")
    if not REMOTE_NAME.fullmatch(path):
        raise ValueError(
            f"the repository path {path!r} must be parts of lower-case letters and digits joined by '/', each "
            "joined within by '.', '_', '__' or dashes"
        )
    if len(path) > REMOTE_NAME_MAX:
        raise ValueError(f"the repository path has {len(path)} characters, over {REMOTE_NAME_MAX}")
    if colon and not TAG.fullmatch(tag):
        raise ValueError(
            f"the tag {tag!r} must be 1 to 128 letters, digits, '_', '.' or '-', and not start with '.' or '-'"
        )
    if at and not (len(encoded) == DIGEST_HEX_LENGTHS.get(algorithm) and LOWER_HEX.fullmatch(encoded)):
        raise ValueError(
            f"the digest {digest!r} must be sha256: and 64 lower-case hex digits (sha384: 96, sha512: 128)"
        )
    return ImageReference(registry, path, tag, digest)


def placeholders(image: str) -> list[str]:
    """The PLACEHOLDERS among `image`'s words, in order."""
    return list(dict.fromkeys(word for word in re.findall(r"[A-Za-z0-9]+", image) if word in PLACEHOLDERS))


def check_image(flag: str, image: str, target: str) -> ImageReference:
    """`image` parsed; ConfigError if it still has a placeholder, breaks the reference grammar, or (for a cluster
    target) names neither registry nor namespace: such a name, as the local tag `make image` builds, resolves to
    Docker Hub's official images, which a cluster pulls instead."""
    words = placeholders(image)
    if words:
        raise ConfigError(
            f"{flag} {image}: {', '.join(f'`{word}`' for word in words)} "
            f"{'is a placeholder' if len(words) == 1 else 'are placeholders'} from the README; put your "
            f"registry's path and a tag, e.g. {IMAGE_EXAMPLE}"
        )
    try:
        reference = image_reference(image)
    except ValueError as error:
        raise ConfigError(f"{flag} {image}: not an image reference: {error}; e.g. {IMAGE_EXAMPLE}") from None
    if target != "kfp-local" and not reference.registry and "/" not in reference.path:
        raise ConfigError(
            f"{flag} {image}: a cluster pulls each task's image from a registry, and this names none; build and "
            f"push one ({IMAGE_BUILD_HINT.replace(IMAGE_FORM, IMAGE_EXAMPLE)}) and pass it as {flag}"
        )
    return reference
