DROP TABLE api_keys;
DROP TABLE group_members;
DROP TABLE user_groups;
ALTER TABLE clients DROP COLUMN admin;
