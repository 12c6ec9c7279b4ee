DROP TABLE store_index;
DROP TABLE store_counters;
DROP TABLE store_entries;
