-- updraft_require(ok, message): raises SQLSTATE UD001 with the message unless ok. A statement
-- sent ahead of its results (a pipelined transaction) uses it to roll the transaction back when
-- a condition the later statements rely on does not hold.
CREATE FUNCTION updraft_require(ok boolean, message text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF ok IS NOT TRUE THEN
    RAISE EXCEPTION USING ERRCODE = 'UD001', MESSAGE = message;
  END IF;
  RETURN true;
END
$$;
