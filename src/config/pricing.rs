//! Pricing settings: what a cost estimate charges for storage, egress and requests.
use super::{values::invalid, ConfigError};

/// Prices for cost estimates.
#[derive(clap::Args, Debug, Clone)]
pub struct PricingSettings {
    /// Price of storage per GB-month, for cost estimates (any currency).
    #[arg(long, env = "CAIRN_PRICE_STORAGE_GB_MONTH", default_value = "0.023",
          value_parser = |v: &str| price("CAIRN_PRICE_STORAGE_GB_MONTH", v))]
    pub price_storage_gb_month: f64,
    /// Price of egress per GB of bytes served (Cairn's own downloads and CloudFront's, per its
    /// logs), for cost estimates.
    #[arg(long, env = "CAIRN_PRICE_EGRESS_GB", default_value = "0.085",
          value_parser = |v: &str| price("CAIRN_PRICE_EGRESS_GB", v))]
    pub price_egress_gb: f64,
    /// Price per 1,000 requests (uploads, and downloads served by Cairn or CloudFront), for cost
    /// estimates.
    #[arg(long, env = "CAIRN_PRICE_REQUESTS_PER_1000", default_value = "0.001",
          value_parser = |v: &str| price("CAIRN_PRICE_REQUESTS_PER_1000", v))]
    pub price_requests_per_1000: f64,
}

/// What a cost estimate charges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub storage_gb_month: f64,
    pub egress_gb: f64,
    pub requests_per_1000: f64,
}

/// A number, 0 or more.
fn price(var: &'static str, v: &str) -> Result<f64, ConfigError> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|p| p.is_finite() && *p >= 0.0)
        .ok_or_else(|| invalid(var, format!("`{v}` is not a price (a number, 0 or more)")))
}

impl PricingSettings {
    pub fn prices(&self) -> Prices {
        Prices {
            storage_gb_month: self.price_storage_gb_month,
            egress_gb: self.price_egress_gb,
            requests_per_1000: self.price_requests_per_1000,
        }
    }
}
