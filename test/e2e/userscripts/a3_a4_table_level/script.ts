// API reference, table-level handlers (A3 and A4) on orders, PRIMARY KEY (id, region_code).
import * as api from "replicator@v2";

const STATUS_DESCRIPTIONS: Record<string, string> = {
  "1": "pending",
  "2": "processing",
  "3": "shipped",
  "4": "delivered",
  "5": "cancelled",
};

api.configureTargetTables(["orders"], {
  onRowUpsert: (row, meta) => {
    row.replicated_at = new Date().toISOString().slice(0, 4);
    if (row.status_code !== undefined) {
      row.status_description = STATUS_DESCRIPTIONS[row.status_code] ?? "unknown";
    }
    return row;
  },
  onRowDelete: (keys, meta) => {
    const [orderId, region] = keys;
    if (region === "EU" || parseInt(orderId) >= 1000) {
      return null;
    }
    return keys;
  },
});
