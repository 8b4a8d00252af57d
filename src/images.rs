//! Placeholder until the image module lands.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("image")]
pub struct ImageError;
pub async fn ensure_image(_d: &bollard::Docker, _r: &str, _report: &(dyn Fn(&str) + Sync)) -> Result<(), ImageError> { Ok(()) }
