fn main(){println!("handler");}
