//! Make sure an image exists locally: present, pulled, or built from Debian packages.
