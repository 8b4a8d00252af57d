//! Make sure an image exists locally: present, pulled, or built from Debian packages.
//!
//! Machines without a reachable registry can still reach Debian's archive, so the images
//! dbtopo needs most (PostgreSQL) are rebuilt from Debian packages when a pull fails.

mod debian;
mod debootstrap_tool;
mod recipe;
mod rootfs;

use std::collections::HashSet;

use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use miette::Diagnostic;
use thiserror::Error;

pub use debian::{MIRROR_ENV, build_from_debian};
pub use recipe::{DebianRecipe, debian_recipe, postgres_major};

/// How [`ensure_image`] obtained the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    Present,
    Pulled,
    Built {
        suite: String,
        packages: Vec<String>,
    },
}

#[derive(Debug, Error, Diagnostic)]
pub enum ImageError {
    #[error(
        "cannot get image `{reference}`: the pull failed ({pull_error}) and Debian does not package it"
    )]
    #[diagnostic(
        code(dbtopo::images::unavailable),
        help(
            "No registry answered for `{reference}`, and dbtopo can rebuild only postgres:17 \
             (also postgres, postgres:latest, postgres:17.x) and postgres:15 from Debian packages \
             (Debian does not package MongoDB). Load the image with `docker load -i FILE`, or \
             change `images.postgres` or `images.mongo` in the topology to an image this \
             machine has."
        )
    )]
    NoRecipe {
        reference: String,
        pull_error: String,
    },

    #[error("debootstrap is not installed; it is needed to build images from Debian packages")]
    #[diagnostic(
        code(dbtopo::images::debootstrap_missing),
        help(
            "install debootstrap (apt-get install debootstrap); on Debian dbtopo fetches it itself when apt-get download works"
        )
    )]
    DebootstrapMissing,

    #[error("debootstrap of Debian {suite} failed ({status}):\n{tail}")]
    #[diagnostic(
        code(dbtopo::images::debootstrap_failed),
        help(
            "debootstrap needs root and Debian's package archive; set DBTOPO_DEBIAN_MIRROR to \
             use another mirror"
        )
    )]
    DebootstrapFailed {
        suite: String,
        status: String,
        tail: String,
    },

    #[error("importing the built file system into Docker as `{tag}` failed: {message}")]
    #[diagnostic(
        code(dbtopo::images::import_failed),
        help("check that the Docker daemon is running and has space for a ~300 MB image")
    )]
    ImportFailed { tag: String, message: String },

    #[error("{action}: {source}")]
    #[diagnostic(code(dbtopo::images::io))]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },

    #[error("Docker request failed: {0}")]
    #[diagnostic(
        code(dbtopo::images::docker),
        help("check that the Docker daemon is running and reachable")
    )]
    Docker(#[from] bollard::errors::Error),
}

impl ImageError {
    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        ImageError::Io {
            action: action.into(),
            source,
        }
    }
}

pub async fn image_present(docker: &Docker, reference: &str) -> Result<bool, ImageError> {
    match docker.inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Present → use it; else pull with progress; if the pull fails, build from Debian packages
/// (saying so through `report`), tag it as `reference`, so next time it is Present.
pub async fn ensure_image(
    docker: &Docker,
    reference: &str,
    report: &(dyn Fn(&str) + Sync),
) -> Result<ImageSource, ImageError> {
    if image_present(docker, reference).await? {
        return Ok(ImageSource::Present);
    }
    let pull_error = match pull(docker, reference, report).await {
        Ok(()) => return Ok(ImageSource::Pulled),
        Err(e) => e,
    };
    let Some(recipe) = debian_recipe(reference) else {
        return Err(ImageError::NoRecipe {
            reference: reference.to_string(),
            pull_error,
        });
    };
    report(&format!(
        "pulling {reference} failed ({pull_error}); building it from Debian {} packages: {}",
        recipe.suite,
        recipe.packages.join(", ")
    ));
    build_from_debian(docker, &recipe, reference, report).await?;
    Ok(ImageSource::Built {
        suite: recipe.suite,
        packages: recipe.packages,
    })
}

/// Pulls `reference`; any failure comes back as text, since the caller only falls back.
async fn pull(
    docker: &Docker,
    reference: &str,
    report: &(dyn Fn(&str) + Sync),
) -> Result<(), String> {
    let mut options = CreateImageOptionsBuilder::default();
    options = match recipe::split_reference(reference) {
        // Without a tag Docker would pull every tag of the repository.
        Some((name, tag)) => options.from_image(name).tag(tag.unwrap_or("latest")),
        None => options.from_image(reference),
    };
    report(&format!("pulling {reference}"));
    let mut progress = PullProgress::default();
    let mut stream = docker.create_image(Some(options.build()), None, None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| e.to_string())?;
        if let Some(line) = progress.line(info.status.as_deref()) {
            report(&format!("{reference}: {line}"));
        }
    }
    Ok(())
}

/// Turns the pull's per-layer status stream into a few lines: each status once, and a
/// count of finished layers.
#[derive(Default)]
struct PullProgress {
    seen: HashSet<String>,
    layers_done: usize,
}

impl PullProgress {
    fn line(&mut self, status: Option<&str>) -> Option<String> {
        let status = status?.trim();
        if status.is_empty() {
            return None;
        }
        if status == "Pull complete" {
            self.layers_done += 1;
            return Some(format!("{} layer(s) pulled", self.layers_done));
        }
        // "Downloading"/"Extracting" repeat per layer with progress; say them once.
        self.seen
            .insert(status.to_string())
            .then(|| status.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_progress_is_compact() {
        let mut p = PullProgress::default();
        let statuses = [
            "Pulling from library/postgres",
            "Pulling fs layer",
            "Pulling fs layer",
            "Downloading",
            "Downloading",
            "Download complete",
            "Extracting",
            "Extracting",
            "Pull complete",
            "Extracting",
            "Pull complete",
            "Status: Downloaded newer image for postgres:17",
        ];
        let lines: Vec<String> = statuses.iter().filter_map(|s| p.line(Some(s))).collect();
        assert_eq!(
            lines,
            [
                "Pulling from library/postgres",
                "Pulling fs layer",
                "Downloading",
                "Download complete",
                "Extracting",
                "1 layer(s) pulled",
                "2 layer(s) pulled",
                "Status: Downloaded newer image for postgres:17",
            ]
        );
    }

    #[test]
    fn no_recipe_error_names_the_image_and_the_ways_out() {
        let e = ImageError::NoRecipe {
            reference: "mongo:7".into(),
            pull_error: "no such host".into(),
        };
        assert!(e.to_string().contains("mongo:7"));
        let help = e.help().unwrap().to_string();
        assert!(
            help.contains("No registry answered for `mongo:7`"),
            "{help}"
        );
        assert!(help.contains("docker load"), "{help}");
        assert!(help.contains("images.postgres"), "{help}");
        let missing = ImageError::DebootstrapMissing.help().unwrap().to_string();
        assert!(missing.starts_with("install debootstrap (apt-get install debootstrap)"));
    }
}
