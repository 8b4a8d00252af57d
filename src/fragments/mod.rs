//! Fragmentation: which node holds which part of a table, and the coordinator objects
//! (postgres_fdw servers, partitioned tables with foreign partitions) that answer for whole
//! tables. Pure: observe/, plan/ and execute/ do the I/O.

pub mod coordinator;
pub mod placement;
pub mod routing;

#[cfg(test)]
mod tests;
