//! Reading a TOML configuration file, with errors that name the file.

use std::path::Path;

/// The configuration file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for the configuration it should hold.
    #[error("config file {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause (line, column and the offending key).
        #[source]
        source: toml::de::Error,
    },
}

/// Reads and parses the TOML file at `path` as a `T`.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigFileError::Read { path: path.display().to_string(), source })?;
    toml::from_str(&text)
        .map_err(|source| ConfigFileError::Parse { path: path.display().to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Example {
        listen: String,
    }

    #[test]
    fn reads_and_names_the_file_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\n").unwrap();
        assert_eq!(read_toml::<Example>(&path).unwrap(), Example { listen: "127.0.0.1:1".into() });

        std::fs::write(&path, "listen = 3\n").unwrap();
        let err = read_toml::<Example>(&path).unwrap_err();
        assert!(matches!(err, ConfigFileError::Parse { .. }));
        assert!(err.to_string().contains("c.toml"), "{err}");

        let err = read_toml::<Example>(&dir.path().join("missing.toml")).unwrap_err();
        assert!(matches!(err, ConfigFileError::Read { .. }));
        assert!(err.to_string().contains("missing.toml"), "{err}");
    }
}
