//! How `dbtopo mongosh` starts MongoDB's shell on a member: the connection string, password
//! included, goes to mongosh in a variable of its environment, never on its command line
//! (where `ps` and shell histories show it); a first `--eval` connects with it.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::diff::ADMIN_USER;

/// The variable of mongosh's environment that carries the connection string.
pub const URI_VARIABLE: &str = "DBTOPO_MONGODB_URI";

/// The connection string for `database` on the member at `host:port`, as dbtopo's admin
/// user, with SCRAM-SHA-256 named (not negotiated) and no discovery of the other members,
/// whose names resolve only on the environment's network.
pub fn connection_uri(host: &str, port: u16, database: &str, password: &str) -> String {
    format!(
        "mongodb://{}:{}@{host}:{port}/{}?authSource=admin&authMechanism=SCRAM-SHA-256&directConnection=true",
        utf8_percent_encode(ADMIN_USER, NON_ALPHANUMERIC),
        utf8_percent_encode(password, NON_ALPHANUMERIC),
        utf8_percent_encode(database, NON_ALPHANUMERIC),
    )
}

/// mongosh's arguments: no connection of its own (`--nodb`), then a script that connects
/// with the string in [`URI_VARIABLE`]; interactive (`--shell`) unless the user gave
/// arguments of their own (a script file, `--eval`), which follow.
pub fn arguments(user_args: &[String]) -> Vec<String> {
    let mut args = vec![
        "--nodb".to_owned(),
        "--quiet".to_owned(),
        "--eval".to_owned(),
        format!("db = connect(process.env.{URI_VARIABLE})"),
    ];
    if user_args.is_empty() {
        args.push("--shell".to_owned());
    }
    args.extend(user_args.iter().cloned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_in_the_connection_string_only_and_encoded() {
        let uri = connection_uri("127.0.0.1", 27117, "shop", "p@ss:w/rd");
        assert_eq!(
            uri,
            format!(
                "mongodb://{ADMIN_USER}:p%40ss%3Aw%2Frd@127.0.0.1:27117/shop?authSource=admin&authMechanism=SCRAM-SHA-256&directConnection=true"
            )
        );
        for user_args in [vec![], vec!["--eval".to_owned(), "db.stats()".to_owned()]] {
            let args = arguments(&user_args);
            assert!(
                args.iter()
                    .all(|a| !a.contains("p@ss") && !a.contains("p%40ss"))
            );
            assert_eq!(args[..2], ["--nodb", "--quiet"]);
            assert!(args[3].contains(URI_VARIABLE));
            assert_eq!(args.contains(&"--shell".to_owned()), user_args.is_empty());
        }
    }
}
