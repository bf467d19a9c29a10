//! How runs are shown: the terminal table, the HTML report, the one-table summary of the newest
//! runs, and the cells they share with `compare`.

pub mod cells;
pub mod html;
pub mod summary;
pub mod text;
