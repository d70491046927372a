//! AbuseIPDB's report categories, by number and by name.
//!
//! The table is AbuseIPDB's own list (ids and names as its official client has them, see
//! `docs/reporting.md`): a report with an id outside it is refused by the API, so a typo is
//! caught here, before any quota is spent. Names are matched without case, spaces, hyphens
//! or underscores, so `brute-force`, `Brute Force` and `bruteforce` are all 18.

use std::fmt;

/// One AbuseIPDB category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Category(u8);

/// Every category: id and AbuseIPDB's name for it.
pub const CATEGORIES: [(u8, &str); 23] = [
    (1, "DNS Compromise"),
    (2, "DNS Poisoning"),
    (3, "Fraud Orders"),
    (4, "DDoS Attack"),
    (5, "FTP Brute-Force"),
    (6, "Ping of Death"),
    (7, "Phishing"),
    (8, "Fraud VoIP"),
    (9, "Open Proxy"),
    (10, "Web Spam"),
    (11, "Email Spam"),
    (12, "Blog Spam"),
    (13, "VPN IP"),
    (14, "Port Scan"),
    (15, "Hacking"),
    (16, "SQL Injection"),
    (17, "Spoofing"),
    (18, "Brute-Force"),
    (19, "Bad Web Bot"),
    (20, "Exploited Host"),
    (21, "Web App Attack"),
    (22, "SSH"),
    (23, "IoT Targeted"),
];

impl Category {
    pub const PORT_SCAN: Category = Category(14);
    pub const BRUTE_FORCE: Category = Category(18);
    pub const SSH: Category = Category(22);

    /// The category with this id, if AbuseIPDB has one.
    pub fn from_id(id: u8) -> Option<Category> {
        CATEGORIES
            .iter()
            .any(|(known, _)| *known == id)
            .then_some(Category(id))
    }

    /// The category with this name (case, spaces, `-` and `_` ignored).
    pub fn from_name(name: &str) -> Option<Category> {
        let wanted = squash(name);
        CATEGORIES
            .iter()
            .find(|(_, known)| squash(known) == wanted)
            .map(|(id, _)| Category(*id))
    }

    pub fn id(self) -> u8 {
        self.0
    }

    pub fn name(self) -> &'static str {
        CATEGORIES
            .iter()
            .find(|(id, _)| *id == self.0)
            .map_or("?", |(_, name)| name)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A category list that is not AbuseIPDB's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CategoryError {
    #[error("no category given")]
    Empty,
    #[error(
        "unknown category `{0}`: AbuseIPDB's categories are 1 to 23 or their names (18 or brute-force, 22 or ssh, 14 or port-scan, …)"
    )]
    Unknown(String),
    #[error("{0} categories: a report takes at most 30")]
    TooMany(usize),
}

/// Parses `18,22`, `brute-force,ssh` or a mix; duplicates are dropped, order kept.
pub fn parse_categories(text: &str) -> Result<Vec<Category>, CategoryError> {
    let mut found: Vec<Category> = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let category = match word.parse::<u8>() {
            Ok(id) => Category::from_id(id),
            Err(_) => Category::from_name(word),
        }
        .ok_or_else(|| CategoryError::Unknown(word.chars().take(40).collect()))?;
        if !found.contains(&category) {
            found.push(category);
        }
    }
    match found.len() {
        0 => Err(CategoryError::Empty),
        n if n > 30 => Err(CategoryError::TooMany(n)),
        _ => Ok(found),
    }
}

/// `18,22`: the form the API and the bulk CSV take.
pub fn join_ids(categories: &[Category]) -> String {
    categories
        .iter()
        .map(|c| c.id().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn squash(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_give_the_same_ids() {
        let by_id = parse_categories("18,22").expect("ids");
        let by_name = parse_categories("Brute-Force, ssh").expect("names");
        assert_eq!(by_id, by_name);
        assert_eq!(join_ids(&by_id), "18,22");
        assert_eq!(
            parse_categories("port scan,bruteforce,SSH,18").map(|c| join_ids(&c)),
            Ok("14,18,22".to_string())
        );
        assert_eq!(Category::BRUTE_FORCE.name(), "Brute-Force");
        assert_eq!(Category::PORT_SCAN.name(), "Port Scan");
    }

    #[test]
    fn unknown_and_empty_lists_are_refused_by_name() {
        assert_eq!(
            parse_categories("18,99"),
            Err(CategoryError::Unknown("99".into()))
        );
        assert_eq!(
            parse_categories("0"),
            Err(CategoryError::Unknown("0".into()))
        );
        assert!(matches!(
            parse_categories("ssh,telnet"),
            Err(CategoryError::Unknown(w)) if w == "telnet"
        ));
        assert_eq!(parse_categories(" , "), Err(CategoryError::Empty));
    }

    #[test]
    fn the_table_is_ids_one_to_twenty_three_with_distinct_names() {
        for (i, (id, name)) in CATEGORIES.iter().enumerate() {
            assert_eq!(usize::from(*id), i + 1);
            assert_eq!(Category::from_name(name), Category::from_id(*id));
        }
    }
}
