//! Column types spelled as PostgreSQL's `format_type(atttypid, atttypmod)` prints them, so a
//! type from a manifest compares equal to the same type read from `pg_attribute`.

use sqlparser::ast::{
    ArrayElemTypeDef, CharacterLength, DataType, ExactNumberInfo, ObjectName, TimezoneInfo,
};

/// Why a type has no canonical spelling here (serial is no type of its own; others the model
/// does not carry yet), saying what to write instead where there is something.
pub struct TypeError(pub String);

/// The canonical spelling of `data_type`.
pub fn canonical(data_type: &DataType) -> Result<String, TypeError> {
    use DataType as T;
    let no_modifier = |name: &str, modifier: &Option<u64>| match modifier {
        None => Ok(name.to_owned()),
        Some(_) => Err(TypeError(format!(
            "`{data_type}`: PostgreSQL's {name} takes no display width"
        ))),
    };
    Ok(match data_type {
        T::SmallInt(m) | T::Int2(m) => no_modifier("smallint", m)?,
        T::Int(m) | T::Integer(m) | T::Int4(m) => no_modifier("integer", m)?,
        T::BigInt(m) | T::Int8(m) => no_modifier("bigint", m)?,
        T::Numeric(info) | T::Decimal(info) | T::Dec(info) => match info {
            ExactNumberInfo::None => "numeric".to_owned(),
            ExactNumberInfo::Precision(p) => format!("numeric({p},0)"),
            ExactNumberInfo::PrecisionAndScale(p, s) => format!("numeric({p},{s})"),
        },
        T::Real | T::Float4 => "real".to_owned(),
        T::Float8 | T::DoublePrecision => "double precision".to_owned(),
        // float(p): 1..=24 binary digits is real, more is double precision.
        T::Float(info) => match info {
            ExactNumberInfo::Precision(p) if *p <= 24 => "real".to_owned(),
            _ => "double precision".to_owned(),
        },
        T::Bool | T::Boolean => "boolean".to_owned(),
        T::Text => "text".to_owned(),
        T::Varchar(length) | T::CharacterVarying(length) | T::CharVarying(length) => match length {
            None => "character varying".to_owned(),
            Some(length) => format!("character varying({})", char_length(length)?),
        },
        // A bare char is char(1).
        T::Char(length) | T::Character(length) => match length {
            None => "character(1)".to_owned(),
            Some(length) => format!("character({})", char_length(length)?),
        },
        T::Date => "date".to_owned(),
        T::Timestamp(precision, tz) => time_type("timestamp", precision, tz),
        T::Time(precision, tz) => time_type("time", precision, tz),
        T::Interval {
            fields: None,
            precision,
        } => match precision {
            None => "interval".to_owned(),
            Some(p) => format!("interval({p})"),
        },
        T::Uuid => "uuid".to_owned(),
        T::JSON => "json".to_owned(),
        T::JSONB => "jsonb".to_owned(),
        T::Bytea => "bytea".to_owned(),
        // PostgreSQL keeps no number of dimensions in a column's type: `int[][]` is `integer[]`.
        T::Array(ArrayElemTypeDef::SquareBracket(inner, _)) => {
            let element = canonical(inner)?;
            if element.ends_with("[]") {
                element
            } else {
                format!("{element}[]")
            }
        }
        // A bare bit is bit(1); bit varying has no length unless given one.
        T::Bit(length) => format!("bit({})", length.unwrap_or(1)),
        T::BitVarying(length) | T::VarBit(length) => match length {
            None => "bit varying".to_owned(),
            Some(length) => format!("bit varying({length})"),
        },
        T::TsVector => "tsvector".to_owned(),
        T::TsQuery => "tsquery".to_owned(),
        T::GeometricType(kind) => kind.to_string(),
        T::Custom(name, modifiers) if modifiers.is_empty() => custom(name)?,
        other => {
            return Err(TypeError(format!(
                "type `{other}` is not supported in a schema manifest"
            )));
        }
    })
}

fn char_length(length: &CharacterLength) -> Result<u64, TypeError> {
    match length {
        CharacterLength::IntegerLength { length, unit: None } => Ok(*length),
        other => Err(TypeError(format!(
            "length `{other}` is not a PostgreSQL character length"
        ))),
    }
}

fn time_type(name: &str, precision: &Option<u64>, tz: &TimezoneInfo) -> String {
    let precision = precision.map(|p| format!("({p})")).unwrap_or_default();
    let zone = match tz {
        TimezoneInfo::WithTimeZone | TimezoneInfo::Tz => "with",
        TimezoneInfo::None | TimezoneInfo::WithoutTimeZone => "without",
    };
    format!("{name}{precision} {zone} time zone")
}

/// The integer type a `serial` shorthand stands for (`bigserial` → `bigint`), or `None` for
/// any other type.
pub fn serial(data_type: &DataType) -> Option<&'static str> {
    let DataType::Custom(name, modifiers) = data_type else {
        return None;
    };
    if !modifiers.is_empty() || name.0.len() != 1 || name.to_string().starts_with('"') {
        return None;
    }
    match name.to_string().to_ascii_lowercase().as_str() {
        "serial" | "serial4" => Some("integer"),
        "bigserial" | "serial8" => Some("bigint"),
        "smallserial" | "serial2" => Some("smallint"),
        _ => None,
    }
}

/// Types sqlparser has no variant for, by their PostgreSQL name.
fn custom(name: &ObjectName) -> Result<String, TypeError> {
    let text = name.to_string();
    let unquoted = text.trim_matches('"');
    let lower = unquoted.to_ascii_lowercase();
    match lower.as_str() {
        "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2" => {
            Err(TypeError(format!(
                "`{text}` makes a column with a sequence; it is no type an array or a cast \
                 can use"
            )))
        }
        "timestamptz" => Ok("timestamp with time zone".to_owned()),
        "timetz" => Ok("time with time zone".to_owned()),
        "bool" => Ok("boolean".to_owned()),
        "float4" => Ok("real".to_owned()),
        "float8" => Ok("double precision".to_owned()),
        "int2" => Ok("smallint".to_owned()),
        "int" | "int4" => Ok("integer".to_owned()),
        "int8" => Ok("bigint".to_owned()),
        "varchar" => Ok("character varying".to_owned()),
        "decimal" => Ok("numeric".to_owned()),
        // inet, cidr, citext, money, …: format_type prints their own (lowercase) name.
        _ if name.0.len() == 1 && !text.starts_with('"') => Ok(lower),
        _ if name.0.len() == 1 => Ok(unquoted.to_owned()),
        _ => Err(TypeError(format!(
            "schema-qualified type `{text}` is not supported"
        ))),
    }
}
